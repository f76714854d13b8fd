/**
 * Redis Cluster backup benchmark: `tykdr backup` with `mode: keys` of a 3-master cluster (every master SCANned and
 * DUMPed) against the raw tools reading the same masters at the same time (`redis-cli --rdb - | zstd | age` per
 * master, the three pipes in parallel: what an operator scripting it by hand would run), and optionally a second
 * tykdr checkout (`--tykdr-root-b`, e.g. a commit that scanned the masters one after another), in one run. Wall and
 * CPU seconds of each command, the masters' CPU, keys per second, tykdr's peak RSS; every tykdr backup's manifest
 * must count every key, and its object must decrypt (age -d | zstd -d) to the manifest's size.
 *
 * Prints figures; asserts nothing (exit 0 unless the benchmark itself could not run).
 *
 *   npx tsx bench/redis-cluster-keys.ts [--keys 300000] [--runs 1] [--quiet-wait 60] [--tykdr-root DIR] [--tykdr-root-b DIR]
 *
 * The cluster (test/helpers/redis-cluster.ts) and temp folders are started here and removed on exit, failure or Ctrl-C.
 * Needs dist/ (npm run build), redis-server, redis-cli, zstd, age, age-keygen.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { keySlot } from '../src/backends/redis/protocol/cluster.js';
import { startRedisCluster, type RedisCluster } from '../test/helpers/redis-cluster.js';
import {
  cpuSeconds, describeCheckout, fmtInt, fmtMB, installCleanup, log, machineLines, measured, median, must, otherCpuStart, peakOf, repoRoot,
  runMain, table, tempDir, track, waitQuiet,
} from './lib.js';
import { session } from './tyk-sessions.js';

installCleanup();

interface Row {
  run: number;
  contender: string;
  seconds: number;
  cpu: number;
  mastersCpu: number;
  peakMb: number;
  keys: number;
  otherCpu: number;
  note: string;
}

function bulk(s: string): string {
  return `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
}

/** Loads keys [0, n) into the masters that own their slots, with `redis-cli --pipe` per master. */
async function fill(cluster: RedisCluster, n: number, dir: string): Promise<void> {
  const ranges = [5460, 10922, 16383];
  const parts: string[][] = cluster.nodes.map(() => []);
  for (let i = 0; i < n; i++) {
    const { key, value, ttl } = session(i);
    const owner = ranges.findIndex((hi) => keySlot(Buffer.from(key)) <= hi);
    parts[owner]!.push(ttl === null ? `*3\r\n$3\r\nSET\r\n${bulk(key)}${bulk(value)}` : `*5\r\n$3\r\nSET\r\n${bulk(key)}${bulk(value)}$2\r\nEX\r\n${bulk(String(ttl))}`);
  }
  await Promise.all(
    cluster.nodes.map(async (node, i) => {
      const file = path.join(dir, `fill-${i}.resp`);
      await writeFile(file, parts[i]!.join(''));
      await must('bash', ['-c', `redis-cli -p ${node.port} --pipe < '${file}' > /dev/null`]);
    }),
  );
}

async function masterPids(cluster: RedisCluster): Promise<number[]> {
  return Promise.all(cluster.nodes.map(async (n) => Number(/process_id:(\d+)/.exec(await n.cli('INFO', 'server'))![1])));
}

function mastersCpu(pids: number[]): number {
  return pids.reduce((s, p) => s + cpuSeconds(p).self + cpuSeconds(p).children, 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '300000' },
      runs: { type: 'string', default: '1' },
      'quiet-wait': { type: 'string', default: '60' },
      'tykdr-root': { type: 'string', default: repoRoot },
      'tykdr-root-b': { type: 'string' },
    },
  });
  const n = Number(values.keys);
  const runs = Number(values.runs);
  const quietWait = Number(values['quiet-wait']);
  const roots: Array<[string, string]> = [['tykdr', path.resolve(values['tykdr-root']!)]];
  if (values['tykdr-root-b']) roots.push(['tykdr-b', path.resolve(values['tykdr-root-b'])]);
  for (const [, r] of roots) if (!existsSync(path.join(r, 'dist/commands/backup.js'))) throw new Error(`${r}/dist is missing: run npm run build there`);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(runs) || runs < 1) throw new Error(`bad --keys/--runs: ${values.keys} / ${values.runs}`);

  const work = await tempDir('cluster-keys');
  log(`starting a 3-master Redis Cluster and loading ${fmtInt(n)} Tyk-like sessions`);
  const cluster = await startRedisCluster(3);
  try {
    await fill(cluster, n, work);
    const perMaster = await Promise.all(cluster.nodes.map(async (node) => Number(await node.cli('DBSIZE'))));
    const total = perMaster.reduce((a, b) => a + b, 0);
    if (total !== n) throw new Error(`the cluster holds ${total} keys, not ${n}`);
    const identity = path.join(work, 'id.txt');
    await must('age-keygen', ['-o', identity]);
    const recipient = (await must('age-keygen', ['-y', identity])).trim();
    const pids = await masterPids(cluster);

    const rows: Row[] = [];
    for (let run = 1; run <= runs; run++) {
      const order = run % 2 === 1 ? ['baseline', ...roots.map(([c]) => c)] : [...roots.map(([c]) => c)].reverse().concat('baseline');
      for (const contender of order) {
        await waitQuiet(quietWait);
        const out = path.join(work, `${contender}-${run}`);
        let script: string;
        if (contender === 'baseline') {
          script = `mkdir -p '${out}'\n` + cluster.nodes.map((node, i) => `(redis-cli -p ${node.port} --rdb - 2>/dev/null | zstd -1 -q | age -r ${recipient} > '${out}/master-${i}.rdb.zst.age') &`).join('\n') + '\nfail=0; for j in $(jobs -p); do wait $j || fail=1; done; [ $fail = 0 ]';
        } else {
          const root = roots.find(([c]) => c === contender)![1];
          const cfg = path.join(work, `${contender}-${run}.yaml`);
          await writeFile(
            cfg,
            `store:\n  kind: local\n  path: ${out}\nencryption:\n  recipients: [${recipient}]\ncompression:\n  algorithm: zstd\n  level: 1\ncomponents:\n  redis:\n    kind: redis\n    host: 127.0.0.1\n    port: ${cluster.nodes[0]!.port}\n    mode: keys\n`,
          );
          // Each checkout keeps its V8 code cache in a folder of its own (one bundle's cache a command in a folder: two
          // checkouts sharing the user's would delete each other's, and every run would start without one).
          script = `TYKDR_CACHE_DIR='${path.join(work, `v8-cache-${contender}`)}' node '${path.join(root, 'bin/run.js')}' backup -c '${cfg}' --json > '${out}.json'`;
        }
        log(`run ${run}: ${contender}`);
        const cpu0 = mastersCpu(pids);
        const other = otherCpuStart();
        const m = await measured(script, { timesFile: path.join(work, `times-${contender}-${run}`) });
        const masters = mastersCpu(pids) - cpu0;
        const cpu = m.cpuUser + m.cpuSys;
        const o = other();
        const otherCpu = Math.max(0, o.busy - o.bench - cpu - masters);
        if (m.code !== 0) throw new Error(`${contender} failed (exit ${m.code}): ${m.stderr.slice(-2000)}`);
        let keys = total;
        let note: string;
        if (contender === 'baseline') {
          note = `${cluster.nodes.length} RDBs in parallel`;
        } else {
          const r = JSON.parse(await readFile(`${out}.json`, 'utf8')) as { id: string; manifest: { components: { redis: { artifact: { name: string; plaintext_bytes: number }; source: { total_keys: number; keys_per_second: number } } } } };
          const c = r.manifest.components.redis;
          keys = c.source.total_keys;
          if (keys !== total) throw new Error(`${contender}'s manifest counts ${keys} keys, the cluster holds ${total}`);
          const object = path.join(out, 'snapshots', r.id, c.artifact.name);
          const plain = await new Promise<number>((resolve, reject) => {
            const child = track(spawn('bash', ['-c', `set -o pipefail; age -d -i '${identity}' '${object}' | zstd -d -q | wc -c`], { stdio: ['ignore', 'pipe', 'inherit'] }));
            let s = '';
            child.stdout!.on('data', (d: Buffer) => (s += d.toString()));
            child.once('close', (code) => (code === 0 ? resolve(Number(s.trim())) : reject(new Error(`decrypting ${object} failed (exit ${code})`))));
          });
          if (plain !== c.artifact.plaintext_bytes) throw new Error(`${object} decrypts to ${plain} bytes, the manifest says ${c.artifact.plaintext_bytes}`);
          note = `scan ${fmtInt(c.source.keys_per_second)} keys/s; decrypted ${fmtMB(plain)} MB = manifest`;
        }
        rows.push({ run, contender, seconds: m.seconds, cpu, mastersCpu: masters, peakMb: (peakOf(m, 'node', 1) * 1024) / 1e6, keys, otherCpu, note });
        log(`  ${m.seconds.toFixed(2)} s, ${cpu.toFixed(2)} CPU-s (+ masters ${masters.toFixed(2)}), other ${otherCpu.toFixed(2)}`);
      }
    }

    const out: string[] = [];
    out.push('tykdr backup of a 3-master Redis Cluster (mode: keys) against the raw tools reading the masters in parallel');
    out.push(...machineLines());
    out.push(`command: npx tsx bench/redis-cluster-keys.ts ${process.argv.slice(2).join(' ')}`.trim());
    for (const [c, r] of roots) out.push(`${c}: ${describeCheckout(r)}`);
    out.push(`keys: ${fmtInt(total)} Tyk-like apikey-* sessions (${perMaster.map(fmtInt).join(' + ')} per master); zstd -1 and one age recipient on both sides; local folder`);
    out.push('');
    out.push(
      table(
        ['run', 'contender', 'seconds', 'keys/s', 'CPU-s command', 'CPU-s masters', 'node peak RSS MB', 'CPU-s other', 'note'],
        rows.map((r) => [String(r.run), r.contender, r.seconds.toFixed(2), fmtInt(r.keys / r.seconds), r.cpu.toFixed(2), r.mastersCpu.toFixed(2), r.contender === 'baseline' ? '-' : r.peakMb.toFixed(1), r.otherCpu.toFixed(2), r.note]),
      ),
    );
    out.push('');
    const med = (c: string, f: (r: Row) => number) => median(rows.filter((r) => r.contender === c).map(f));
    const base = med('baseline', (r) => r.seconds);
    for (const [c] of roots) {
      out.push(`${c}: median ${med(c, (r) => r.seconds).toFixed(2)} s = ${(med(c, (r) => r.seconds) / base).toFixed(2)}x the raw tools' ${base.toFixed(2)} s; CPU-s ${med(c, (r) => r.cpu).toFixed(2)} against ${med('baseline', (r) => r.cpu).toFixed(2)}`);
    }
    out.push('A row whose "CPU-s other" is above 0.5 was disturbed by other work on the machine.');
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await cluster.stop();
  }
}

await runMain(main);
