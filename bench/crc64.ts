/**
 * CRC-64 throughput: tykdr's slicing-by-16 CRC-64 (Jones, as Redis's RDB trailer; src/backends/redis/formats/crc64.ts)
 * over random data in 64 KiB chunks, as the RDB inspector feeds it, against SHA-256 of node's crypto (OpenSSL) over
 * the same chunks in the same process, as a reference for this machine. Wall and CPU seconds, MB/s (MB = 10^6 bytes).
 * Prints figures; asserts nothing (it was a speed assertion in test/unit/crc64.test.ts).
 *
 *   npx tsx bench/crc64.ts [--mib 256] [--runs 3]
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Crc64 } from '../src/backends/redis/formats/crc64.js';
import { fmtInt, machineLines, median, runMain, table } from './lib.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' } } });
  const mib = Number(values.mib);
  const runs = Number(values.runs);
  if (!Number.isInteger(mib) || mib < 1 || !Number.isInteger(runs) || runs < 1) throw new Error(`bad --mib/--runs: ${values.mib} / ${values.runs}`);
  const data = randomBytes(mib * 1024 * 1024);
  const chunks = (f: (c: Buffer) => void) => {
    for (let o = 0; o < data.length; o += 65536) f(data.subarray(o, o + 65536));
  };
  const contenders: Record<string, () => void> = {
    'tykdr CRC-64': () => {
      const c = new Crc64();
      chunks((b) => c.update(b));
    },
    'node SHA-256 (OpenSSL)': () => {
      const h = createHash('sha256');
      chunks((b) => h.update(b));
      h.digest();
    },
  };
  const rows: string[][] = [];
  for (const [name, f] of Object.entries(contenders)) {
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < runs; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      f();
      wall.push((performance.now() - t0) / 1000);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1e6);
    }
    const w = median(wall);
    rows.push([name, w.toFixed(3), median(cpu).toFixed(3), fmtInt(data.length / 1e6 / w)]);
  }
  const out = ['CRC-64 throughput', ...machineLines(), `data: ${mib} MiB of random bytes in 64 KiB chunks; medians of ${runs} run(s)`, ''];
  out.push(table(['contender', 'wall s', 'CPU s', 'MB/s'], rows));
  process.stdout.write(`${out.join('\n')}\n`);
}

await runMain(main, () => undefined);
