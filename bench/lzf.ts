/**
 * LZF decoding of Tyk sessions, as a live restore decodes each string into its SET command
 * (src/backends/redis/formats/lzf.ts): the WebAssembly kernel (lzfDecodeInto) against the JavaScript loop
 * (lzfDecodeIntoJs) and the older lzfDecompress (a buffer per value), and the CRC-64 of the same values' DUMP payloads
 * (what a RESTORE payload costs tykdr instead), in the same process. The values are Redis's own: N sessions of
 * bench/tyk-sessions.ts SET into a redis-server and read back with DUMP (LZF-compressed, as in an RDB file).
 * Prints µs per value (medians of the runs); asserts nothing.
 *
 *   npx tsx bench/lzf.ts [--keys 100000] [--runs 5]
 */
import { parseArgs } from 'node:util';
import { Redis as IORedis } from 'ioredis';
import { Crc64 } from '../src/backends/redis/formats/crc64.js';
import { lzfDecodeInto, lzfDecodeIntoJs, lzfDecompress } from '../src/backends/redis/formats/lzf.js';
import { fillRedis, fmtInt, installCleanup, log, machineLines, median, runMain, startRedis, table } from './lib.js';

installCleanup();

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' } } });
  const n = Number(values.keys);
  const runs = Number(values.runs);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(runs) || runs < 1) throw new Error(`bad --keys/--runs: ${values.keys} / ${values.runs}`);
  const redis = await startRedis();
  log(`loading ${fmtInt(n)} sessions, reading their DUMP payloads`);
  await fillRedis(redis.port, 0, n);
  const r = new IORedis({ host: '127.0.0.1', port: redis.port });
  const dumps: Buffer[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await r.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    const p = r.pipeline();
    for (const k of keys) p.dumpBuffer(k);
    for (const [err, d] of (await p.exec())!) {
      if (err || !Buffer.isBuffer(d)) throw new Error(`DUMP failed: ${err?.message}`);
      dumps.push(d);
    }
  } while (cursor !== '0');
  r.disconnect();
  await redis.stop();

  // A DUMP payload of a string: type 0, then 0xc3 (LZF), compressed length, length, the data; 10 trailer bytes.
  const len = (b: Buffer, q: number): [number, number] => {
    const x = b[q]!;
    if (x >> 6 === 0) return [x & 63, q + 1];
    if (x >> 6 === 1) return [((x & 63) << 8) | b[q + 1]!, q + 2];
    return [b.readUInt32BE(q + 1), q + 5];
  };
  const values_ = dumps.flatMap((d) => {
    if (d[0] !== 0 || d[1] !== 0xc3) return [];
    const [clen, q1] = len(d, 2);
    const [ulen, q2] = len(d, q1);
    return [{ d, from: q2, to: q2 + clen, ulen }];
  });
  if (values_.length < n / 2) throw new Error(`only ${values_.length} of ${dumps.length} values are LZF-compressed strings`);
  const out = Buffer.allocUnsafe(8 << 20);
  const crc = new Crc64();
  let check = 0;
  // Every value decoded into one buffer, one after the other, as into a batch of SET commands.
  const into = (decode: typeof lzfDecodeInto) => () => {
    let op = 0;
    for (const v of values_) {
      if (op + v.ulen > out.length) op = 0;
      op = decode(v.d, v.from, v.to, out, op, v.ulen);
      if (op < 0) throw new Error('decode failed');
    }
  };
  const contenders: Record<string, () => void> = {
    'lzfDecodeInto (WebAssembly kernel)': into(lzfDecodeInto),
    'lzfDecodeIntoJs (JavaScript loop)': into(lzfDecodeIntoJs),
    'lzfDecompress (a buffer per value)': () => {
      for (const v of values_) check += lzfDecompress(v.d.subarray(v.from, v.to), v.ulen)!.length;
    },
    'CRC-64 of the DUMP payload (a RESTORE instead)': () => {
      for (const v of values_) {
        crc.reset();
        crc.updateRange(v.d, 0, v.d.length - 8);
      }
    },
  };
  const rows: string[][] = [];
  for (const [name, f] of Object.entries(contenders)) {
    f(); // warm-up
    const us: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      f();
      us.push(((performance.now() - t0) * 1000) / values_.length);
    }
    rows.push([name, median(us).toFixed(2), Math.min(...us).toFixed(2)]);
  }
  const avg = (f: (v: (typeof values_)[number]) => number) => Math.round(values_.reduce((a, v) => a + f(v), 0) / values_.length);
  const lines = ['LZF decoding of Tyk sessions', ...machineLines()];
  lines.push(`values: ${fmtInt(values_.length)} LZF-compressed strings, ${avg((v) => v.ulen)} bytes each on average (${avg((v) => v.to - v.from)} compressed); medians of ${runs} run(s)`, '');
  lines.push(table(['contender', 'µs per value', 'fastest'], rows));
  process.stdout.write(`${lines.join('\n')}\n`);
}

await runMain(main);
