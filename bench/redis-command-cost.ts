/**
 * What a key costs the target Redis, by the command a live restore could write it with: N Tyk sessions
 * (bench/tyk-sessions.ts; 70% with a TTL) sent by `redis-cli --pipe` from a file into an empty redis-server, one
 * file per way of writing them, the server's own CPU read from INFO cpu before and after (used_cpu_user + sys):
 *
 *   RESTORE      RESTORE key ttl payload REPLACE ABSTTL, the payload from DUMP (LZF-compressed, as cut from an RDB)
 *   SET [PXAT]   SET key value, with PXAT ms for a key with a TTL (what tykdr's live restore sends for a string)
 *   SET          SET key value, no TTL for any key (what a key without one costs)
 *   MSET x100    MSET of 100 keys, no TTL
 *
 * Each round runs every file once into a new server, in rotating order. Prints Redis's CPU µs per key and
 * redis-cli's rate (medians over rounds); asserts nothing. Bounds what a client can get: Redis at 100% of a CPU.
 *
 *   npx tsx bench/redis-command-cost.ts [--keys 200000] [--rounds 3]
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis as IORedis } from 'ioredis';
import { session } from './tyk-sessions.js';
import { fillRedis, fmtInt, fmtMB, installCleanup, log, machineLines, measured, median, runMain, startRedis, table, tempDir } from './lib.js';

installCleanup();

const WAYS = ['RESTORE', 'SET [PXAT]', 'SET', 'MSET x100'] as const;
type Way = (typeof WAYS)[number];

const bulk = (b: Buffer | string) => {
  const x = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([Buffer.from(`$${x.length}\r\n`), x, Buffer.from('\r\n')]);
};
const cmd = (...args: Array<Buffer | string>) => Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.map(bulk)]);

async function cpuOf(r: IORedis): Promise<number> {
  const s = await r.info('cpu');
  const f = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(s)?.[1] ?? NaN);
  return f('used_cpu_user') + f('used_cpu_sys');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '3' } } });
  const n = Number(values.keys);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(n) || n < 100 || !Number.isInteger(rounds) || rounds < 1) throw new Error(`bad --keys/--rounds: ${values.keys} / ${values.rounds}`);
  const work = await tempDir('command-cost');
  const source = await startRedis();
  log(`loading ${fmtInt(n)} sessions, writing one command file per way`);
  await fillRedis(source.port, 0, n);
  const r = new IORedis({ host: '127.0.0.1', port: source.port });
  const files = new Map<Way, { file: string; bytes: number }>();
  const outs = new Map<Way, { file: string; out: ReturnType<typeof createWriteStream>; bytes: number }>();
  for (const w of WAYS) {
    const file = path.join(work, `${w.replace(/\W+/g, '-')}.resp`);
    outs.set(w, { file, out: createWriteStream(file), bytes: 0 });
  }
  const write = async (w: Way, b: Buffer) => {
    const o = outs.get(w)!;
    o.bytes += b.length;
    if (!o.out.write(b)) await once(o.out, 'drain');
  };
  let mset: Buffer[] = [];
  const now = Date.now();
  for (let i = 0; i < n; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, n - i) }, (_, j) => session(i + j));
    const p = r.pipeline();
    for (const s of batch) p.dumpBuffer(s.key);
    const dumps = (await p.exec())!;
    for (let j = 0; j < batch.length; j++) {
      const s = batch[j]!;
      const at = s.ttl === null ? 0 : now + s.ttl * 1000;
      await write('RESTORE', cmd('RESTORE', s.key, String(at), dumps[j]![1] as Buffer, 'REPLACE', 'ABSTTL'));
      await write('SET [PXAT]', at > 0 ? cmd('SET', s.key, s.value, 'PXAT', String(at)) : cmd('SET', s.key, s.value));
      await write('SET', cmd('SET', s.key, s.value));
      mset.push(Buffer.from(s.key), Buffer.from(s.value));
      if (mset.length === 200) {
        await write('MSET x100', cmd('MSET', ...mset));
        mset = [];
      }
    }
  }
  if (mset.length > 0) await write('MSET x100', cmd('MSET', ...mset));
  r.disconnect();
  await source.stop();
  for (const [w, o] of outs) {
    o.out.end();
    await finished(o.out);
    files.set(w, { file: o.file, bytes: o.bytes });
  }

  const perKey = new Map<Way, number[]>(WAYS.map((w) => [w, []]));
  const rates = new Map<Way, number[]>(WAYS.map((w) => [w, []]));
  for (let round = 0; round < rounds; round++) {
    const order = [...WAYS.slice(round % WAYS.length), ...WAYS.slice(0, round % WAYS.length)];
    for (const w of order) {
      const target = await startRedis();
      const t = new IORedis({ host: '127.0.0.1', port: target.port });
      const c0 = await cpuOf(t);
      const m = await measured(`redis-cli -h 127.0.0.1 -p ${target.port} --pipe < '${files.get(w)!.file}'`, { timesFile: path.join(work, 'times') });
      const c1 = await cpuOf(t);
      const keys = await t.dbsize();
      t.disconnect();
      await target.stop();
      if (m.code !== 0 || keys !== n) throw new Error(`${w}: redis-cli --pipe exited ${m.code}, DBSIZE ${keys} (expected ${n}): ${(m.stdout + m.stderr).slice(-500)}`);
      perKey.get(w)!.push(((c1 - c0) * 1e6) / n);
      rates.get(w)!.push(n / m.seconds);
      log(`round ${round + 1}, ${w}: ${(((c1 - c0) * 1e6) / n).toFixed(2)} µs a key, ${fmtInt(n / m.seconds)} keys/s`);
    }
  }
  const lines = ["What a key costs the target Redis, by command (redis-cli --pipe from a file into an empty redis-server)", ...machineLines()];
  lines.push(`keys: ${fmtInt(n)} Tyk sessions (bench/tyk-sessions.ts), 70% with a TTL; medians of ${rounds} round(s)`, '');
  lines.push(table(['command', 'file MB', "Redis CPU µs a key", 'fastest round', 'redis-cli --pipe keys/s'], WAYS.map((w) => [
    w, fmtMB(files.get(w)!.bytes), median(perKey.get(w)!).toFixed(2), Math.min(...perKey.get(w)!).toFixed(2), fmtInt(median(rates.get(w)!)),
  ])));
  process.stdout.write(`${lines.join('\n')}\n`);
}

await runMain(main);
