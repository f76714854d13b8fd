/**
 * A restore's stage alone: stageArtifact (read the stored object, SHA-256, age, zstd, write the plaintext into the
 * staging folder) in a fresh node per run, against the raw tools doing the same work, `age -d -i ID OBJECT | zstd
 * -d -q -o FILE`, in turns on the same object. Several checkouts side by side (--root, repeatable): the way to see
 * what a change to the stage pays. Prints wall and CPU seconds (all threads; for tykdr after its imports), their
 * medians and the median of the per-round ratios to the raw tools and to the first checkout. Asserts nothing, but
 * every run must stage the manifest's plaintext size, and the raw tools' file must have it too.
 *
 *   npx tsx bench/restore-stage.ts [--keys 1000000] [--runs 8] [--root DIR]... (default: this checkout)
 *
 * The snapshot is a `tykdr backup` (the first root's CLI, its default zstd level) of N Tyk-like sessions to a local
 * folder. Needs dist/ built in each root, redis-server, redis-cli, zstd, age and age-keygen (bash scripts/tools.sh).
 */
import { readdirSync, statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkoutsBench, installCleanup, log, median, must, runMain, table } from './lib.js';

installCleanup();

const CHILD = `
import { readFileSync, readdirSync } from 'node:fs';
const [root, storeDir, identity, dir] = process.argv.slice(2);
const { LocalStore } = await import(root + '/dist/backends/stores/local-store.js');
const { readManifest } = await import(root + '/dist/core/catalog.js');
const { stageArtifact } = await import(root + '/dist/core/restore/staging.js');
const { parseIdentityFile } = await import(root + '/dist/core/age/index.js');
const store = new LocalStore(storeDir);
const manifest = await readManifest(store, readdirSync(storeDir + '/snapshots')[0]);
const identities = parseIdentityFile(readFileSync(identity, 'utf8'), identity);
const c0 = process.cpuUsage();
const w0 = performance.now();
const s = await stageArtifact({ store, manifest, component: 'redis', dir, keys: { identities } });
const wall = (performance.now() - w0) / 1000;
const c = process.cpuUsage(c0);
const want = manifest.components.redis.artifact.plaintext_bytes;
if (s.plaintextBytes !== want) throw new Error('staged ' + s.plaintextBytes + ' bytes, the manifest says ' + want);
process.stdout.write(JSON.stringify({ wall, cpu: (c.user + c.system) / 1e6, bytes: s.plaintextBytes }));
`;

interface Row {
  wall: number;
  cpu: number;
}

/** The raw tools, timed by bash (`times`: the pipeline's CPU, children included). */
async function raw(object: string, identity: string, file: string): Promise<Row> {
  const script = `s=$(date +%s.%N); age -d -i '${identity}' '${object}' | zstd -d -q -f -o '${file}'; e=$(date +%s.%N); times; echo "$s $e"`;
  const lines = (await must('bash', ['-c', script])).split('\n');
  const [s, e] = lines.at(-1)!.split(' ').map(Number) as [number, number];
  // `times` prints the shell's own and its children's user/system times: "0m0.001s 0m0.002s" on two lines.
  const sec = (t: string) => t.split(/\s+/).reduce((a, x) => a + Number(/(\d+)m([\d.]+)s/.exec(x)![1]) * 60 + Number(/(\d+)m([\d.]+)s/.exec(x)![2]), 0);
  return { wall: e - s, cpu: sec(lines[0]!) + sec(lines[1]!) };
}

await runMain(async () => {
  const { keys, runs, roots, work, script, identity, recipient: pub, redis } = await checkoutsBench('restore-stage', CHILD, { keys: 1_000_000, runs: 8 });
  const storeDir = path.join(work, 'store');
  const cfg = path.join(work, 'tykdr.yaml');
  await writeFile(cfg, `store: { kind: local, path: ${storeDir} }\nencryption: { recipients: [${pub}] }\ncomponents:\n  redis: { kind: redis, port: ${redis.port} }\ntiers: { critical: { rto: 1h, rpo: 24h } }\n`);
  await must(process.execPath, [path.join(roots[0]!, 'bin/run.js'), 'backup', '-c', cfg]);
  await redis.stop();
  const snap = readdirSync(path.join(storeDir, 'snapshots'))[0]!;
  const object = path.join(storeDir, 'snapshots', snap, 'redis.rdb.zst.age');
  log(`snapshot ${snap}: ${statSync(object).size.toLocaleString('en')} bytes stored`);

  const names = ['raw tools', ...roots];
  const rows = new Map<string, Row[]>(names.map((n) => [n, []]));
  let plainBytes = 0;
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const dir = path.join(work, 'staged');
      await rm(dir, { recursive: true, force: true });
      let row: Row;
      if (name === 'raw tools') {
        await must('mkdir', ['-p', dir]);
        const file = path.join(dir, 'dump.rdb');
        row = await raw(object, identity, file);
        const size = statSync(file).size;
        if (plainBytes && size !== plainBytes) throw new Error(`the raw tools wrote ${size} bytes, tykdr staged ${plainBytes}`);
      } else {
        const r = JSON.parse(await must(process.execPath, [script, name, storeDir, identity, dir])) as Row & { bytes: number };
        plainBytes = r.bytes;
        row = r;
      }
      rows.get(name)!.push(row);
      log(`round ${i + 1}, ${name === 'raw tools' ? name : path.basename(name)}: ${row.wall.toFixed(3)} s, ${row.cpu.toFixed(2)} CPU-s`);
    }
  }
  await rm(path.join(work, 'staged'), { recursive: true, force: true });
  const f = (xs: number[]) => median(xs).toFixed(3);
  const ratio = (a: string, b: string, k: keyof Row) => median(rows.get(a)!.map((x, i) => x[k] / rows.get(b)![i]![k])).toFixed(3);
  process.stdout.write(
    `Stage of a ${keys.toLocaleString('en')}-key snapshot (${plainBytes.toLocaleString('en')} plaintext bytes), ${runs} rounds, order reversed every other round; medians:\n` +
      table(
        ['contender', 'wall s', 'CPU s', 'wall / raw (per round)', 'CPU / raw', `wall / ${path.basename(roots[0]!)}`],
        names.map((n) => [n, f(rows.get(n)!.map((x) => x.wall)), f(rows.get(n)!.map((x) => x.cpu)), ratio(n, 'raw tools', 'wall'), ratio(n, 'raw tools', 'cpu'), n === 'raw tools' ? '' : ratio(n, roots[0]!, 'wall')]),
      ) +
      '\ntykdr: stageArtifact after its imports (SHA-256 of the stored bytes, age, zstd on a worker thread, the write); raw tools: age -d | zstd -d -o, spawn to exit.\n',
  );
});
