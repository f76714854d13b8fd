/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`): where the main thread's time went.
 *
 *   npx tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top 25]
 *
 * Two views: (1) self time per function (the leaf of each sample), and (2) time per area, charging each
 * sample to the nearest frame on its stack that belongs to a known area (tykdr's RDB inspector, age, the
 * pipeline taps, zstd-napi, the AWS SDK...), so that native work such as ChaCha20 or SHA-256, which V8
 * sees as a node:crypto leaf, is charged to the tykdr code that asked for it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Area of one frame, or null when the frame is generic (node internals, anonymous glue). */
function area(f: CallFrame): string | null {
  const u = f.url;
  if (u === '') {
    if (f.functionName === '(garbage collector)') return 'garbage collector';
    if (f.functionName === '(idle)') return 'idle (waiting on I/O, Redis, MinIO, the zstd thread)';
    if (f.functionName === '(program)') return 'V8/native outside JS (program)';
    return null;
  }
  if (/\/crc64\.js$/.test(u)) return 'RDB inspector: CRC-64';
  if (/\/(rdb-parser|rdb-reader|rdb-inspector|lzf|rdb-constants)\.js$/.test(u)) return 'RDB inspector: parser';
  if (/\/(replication|resp-lines|connection)\.js$/.test(u)) return 'Redis replication socket';
  if (/\/redis-source\.js$/.test(u)) return 'Redis source (key classes)';
  if (/\/tyk\//.test(u)) return 'Redis source (key classes)';
  if (/\/core\/age\//.test(u)) return 'age encryption (ChaCha20-Poly1305)';
  if (/\/core\/pipeline\.js$/.test(u)) return 'pipeline taps (byte counts, SHA-256)';
  if (/zstd-napi/.test(u)) return 'zstd-napi (JS side; compression runs on its own thread)';
  if (/@aws-sdk|@smithy/.test(u)) return 'S3 upload (AWS SDK)';
  if (/\/stores\//.test(u)) return 'store';
  if (/@oclif|\/commands\/|\/cli\/|\/config\/|zod|yaml/.test(u)) return 'CLI start-up, config';
  return null;
}

function generic(f: CallFrame): string {
  const u = f.url;
  if (u.startsWith('node:internal/streams') || u.startsWith('node:stream')) return 'node streams (unattributed)';
  if (u.startsWith('node:internal/crypto')) return 'node:crypto (unattributed)';
  if (u.startsWith('node:')) return 'node internals (unattributed)';
  if (u === '') return 'native code (unattributed)';
  return 'other JS';
}

function short(f: CallFrame): string {
  const file = f.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/');
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

export function summarizeProfile(p: CpuProfile, top = 20): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const secs = (us: number) => `${(us / 1e6).toFixed(2).padStart(6)} s`;

  const fn = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const leaf = byId.get(id)!;
    const key = short(leaf.callFrame);
    fn.set(key, (fn.get(key) ?? 0) + us);
    let a: string | null = null;
    for (let cur: number | undefined = id; cur !== undefined && a === null; cur = parent.get(cur)) a = area(byId.get(cur)!.callFrame);
    const k = a ?? generic(leaf.callFrame);
    areas.set(k, (areas.get(k) ?? 0) + us);
  }
  const lines: string[] = [`  sampled ${secs(total)} of main-thread time`, '  by area (each sample charged to the nearest tykdr/library frame on its stack):'];
  for (const [k, us] of [...areas].sort((a, b) => b[1] - a[1])) lines.push(`    ${secs(us)} ${pct(us)}  ${k}`);
  lines.push(`  top ${top} functions by self time:`);
  for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${secs(us)} ${pct(us)}  ${k}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: npx tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const i = process.argv.indexOf('--top');
  const top = i > 0 ? Number(process.argv[i + 1]) : 25;
  process.stdout.write(`${summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top)}\n`);
}
