/**
 * The Redis backup's bytes path alone, without the CLI's start-up: in a fresh node per run, RedisSource.open()
 * (SYNC over replication, RDB checked and its keys classified) into writeArtifact (zstd -1, age) to a local
 * folder store. Prints the CPU seconds of that part (all threads, then the main thread, the busiest other
 * thread and the rest), the wall time and the process's peak RSS. Several checkouts side by side, in turns,
 * on the same Redis: the way to see what a change to the bytes path pays. Asserts nothing, but every run's
 * key count, key classes and plaintext bytes must agree across checkouts (it stops if they do not).
 *
 *   npx tsx bench/redis-bytes-path.ts [--keys 200000] [--runs 5] [--root DIR]... (default: this checkout)
 *
 * Needs dist/ built in each root (npx tsc -p tsconfig.json), redis-server, redis-cli and age-keygen.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { checkoutsBench, installCleanup, log, median, runMain, table, track } from './lib.js';

installCleanup();

const CHILD = `
import { readdirSync, readFileSync } from 'node:fs';
const [root, port, dir, recipient] = process.argv.slice(2);
const { RedisSource } = await import(root + '/dist/backends/redis/source/redis-source.js');
const { writeArtifact } = await import(root + '/dist/core/pipeline.js');
const { LocalStore } = await import(root + '/dist/backends/stores/local-store.js');
const tick = 100;
function threads() {
  const m = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    const s = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    m.set(tid, (Number(f[11]) + Number(f[12])) / tick);
  }
  return m;
}
const t0 = threads();
const c0 = process.cpuUsage();
const w0 = performance.now();
const src = new RedisSource({ name: 'redis', kind: 'redis', mode: 'rdb', host: '127.0.0.1', port: Number(port), db: 0, connectTimeout: '10s', stallTimeout: '60s' });
const art = await src.open();
const w = await writeArtifact({
  source: art.stream, store: new LocalStore(dir), key: 'snap/redis.rdb.zst.age',
  compression: { algorithm: 'zstd', level: 1 }, keys: { recipients: [recipient] },
});
const facts = (await art.finish()).source;
const wall = (performance.now() - w0) / 1000;
const c1 = process.cpuUsage(c0);
const t1 = threads();
const per = [...t1].map(([tid, v]) => [tid, v - (t0.get(tid) ?? 0)]);
const main = per.find(([tid]) => tid === String(process.pid))[1];
const others = per.filter(([tid]) => tid !== String(process.pid)).map(([, v]) => v).sort((a, b) => b - a);
process.stdout.write(JSON.stringify({
  cpu: (c1.user + c1.system) / 1e6, main, busiest: others[0] ?? 0, rest: others.slice(1).reduce((a, b) => a + b, 0),
  wall, rssMB: process.resourceUsage().maxRSS / 1000,
  check: { keys: facts.total_keys, classes: facts.key_classes, databases: facts.databases, checksum: facts.rdb_checksum, plain: w.plaintextBytes },
}));
`;

interface Row { cpu: number; main: number; busiest: number; rest: number; wall: number; rssMB: number; check: unknown }

function runChild(script: string, args: string[]): Promise<Row> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Row) : reject(new Error(`child exited ${code}: ${err.trim()}`))));
  });
}

await runMain(async () => {
  const { keys, runs, roots, work, script, recipient: pub, redis } = await checkoutsBench('bytes-path', CHILD, { keys: 200_000, runs: 5 });
  const rows = new Map<string, Row[]>(roots.map((r) => [r, []]));
  let reference: string | undefined;
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? roots : [...roots].reverse();
    for (const root of order) {
      const dir = path.join(work, `store-${i}-${roots.indexOf(root)}`);
      const row = await runChild(script, [root, String(redis.port), dir, pub]);
      const check = JSON.stringify(row.check);
      reference ??= check;
      if (check !== reference) throw new Error(`${root} run ${i + 1} disagrees: ${check} vs ${reference}`);
      rows.get(root)!.push(row);
      log(`${path.basename(root)} run ${i + 1}: CPU ${row.cpu.toFixed(2)} s (main ${row.main.toFixed(2)}, other ${row.busiest.toFixed(2)} + ${row.rest.toFixed(2)}), ${row.wall.toFixed(2)} s, ${row.rssMB.toFixed(1)} MB`);
    }
  }
  await redis.stop();
  const f = (xs: number[]) => median(xs).toFixed(2);
  process.stdout.write(
    `${keys.toLocaleString('en')} keys, ${runs} runs each, medians (CPU s of the bytes path after imports; RSS = process peak):\n` +
      table(
        ['checkout', 'CPU s', 'main', 'busiest other', 'rest', 'wall s', 'peak RSS MB (max)'],
        roots.map((r) => {
          const xs = rows.get(r)!;
          return [r, f(xs.map((x) => x.cpu)), f(xs.map((x) => x.main)), f(xs.map((x) => x.busiest)), f(xs.map((x) => x.rest)), f(xs.map((x) => x.wall)), Math.max(...xs.map((x) => x.rssMB)).toFixed(1)];
        }),
      ) +
      `\ncheck (identical in every run): ${reference}\n`,
  );
});
