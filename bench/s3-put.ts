/**
 * Store upload benchmark: the CPU that `store.put` of one object costs tykdr, S3 (a local MinIO) against a
 * local folder, without Redis, zstd or age in the way. Each run is a fresh node process that loads tykdr's
 * store registry from dist/, makes the body (random bytes, as age's output is, in chunks of 65,536 and 16 bytes,
 * as age writes them), then measures:
 *   load = importing the store module (the AWS SDK for S3) and the store's check (HeadBucket);
 *   put  = store.put of the body (S3: HeadObject, the upload, HeadObject), as a backup does it;
 * each as CPU-seconds of the main thread and of the process's other threads (/proc/self/task), and MinIO's
 * CPU during the put. Prints figures; asserts nothing.
 *
 *   npx tsx bench/s3-put.ts [--mb 42.5] [--runs 5] [--part-size MiB] [--concurrency N] [--tykdr-root DIR] [--compare DIR]
 *       [--object-lock] [--tls] [--conn-mbps R] [--node-args="--cpu-prof --cpu-prof-dir=DIR"]
 *
 * --conn-mbps R puts a proxy in front of MinIO that serves each connection at R MB/s (bench/lib.ts rateProxy), as S3
 * serves each connection at a limited rate: what uploadConcurrency is worth there (not with --tls).
 *
 * --tls runs MinIO over https (a throwaway CA, trusted by the measured process through NODE_EXTRA_CA_CERTS).
 * --compare DIR (repeatable) adds an S3 row for another built checkout (e.g. main, `git archive` into DIR and built),
 * run in turn with this one in every round, so a change is measured against its baseline on the same load.
 * Defaults: the config schema's partSizeMiB (8) and uploadConcurrency (2).
 * Needs dist/ (npx tsc -p tsconfig.json) and .tools/bin/minio (bash scripts/tools.sh).
 */
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CLK_TCK, describeCheckout, fmtMB, installCleanup, log, machineLines, MB, median, MINIO_KEY, MINIO_SECRET, rateProxy, repoRoot, run, runMain, startMinioServer, table, tempDir,
} from './lib.js';

installCleanup();

const KEY = MINIO_KEY;
const SECRET = MINIO_SECRET;

/** The child: plain ESM run by node itself (no tsx in the measured process). Prints one JSON line. */
const CHILD = String.raw`
import { readdirSync, readFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';
const [root, cfgJson, mbText, minioPid, clk] = process.argv.slice(1);
const cfg = JSON.parse(cfgJson);
// The loaded config holds the secret as a Secret (reveal()).
if (cfg.secretAccessKey) { const s = cfg.secretAccessKey; cfg.secretAccessKey = { reveal: () => s }; }
function threads() {
  const out = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    const s = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    out.set(tid, (Number(f[11]) + Number(f[12])) / Number(clk));
  }
  return out;
}
function split(a, b) {
  let main = 0, other = 0;
  for (const [tid, v] of b) { const d = v - (a.get(tid) ?? 0); if (tid === String(process.pid)) main += d; else other += d; }
  return { main, other };
}
function minioCpu() {
  const s = readFileSync('/proc/' + minioPid + '/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / Number(clk);
}
// As age writes them: each 64 KiB of ciphertext, then its 16-byte tag, as separate chunks.
const CHUNK = 65536;
const bytes = Math.round(Number(mbText) * 1e6);
const data = randomFillSync(Buffer.allocUnsafeSlow(bytes));
const t0 = threads();
const { openStore } = await import(root + '/dist/backends/stores/registry.js');
const store = openStore(cfg, {});
await store.check();
const t1 = threads();
const m0 = minioCpu();
const w0 = performance.now();
const body = Readable.from((function* () {
  for (let i = 0; i < bytes; i += CHUNK + 16) {
    yield data.subarray(i, Math.min(bytes, i + CHUNK));
    if (i + CHUNK < bytes) yield data.subarray(i + CHUNK, Math.min(bytes, i + CHUNK + 16));
  }
})(), { objectMode: true });
const r = await store.put('bench/' + process.pid + '.bin', body);
const w1 = performance.now();
const t2 = threads();
const m1 = minioCpu();
if (r.bytes !== bytes) throw new Error('stored ' + r.bytes + ' bytes, sent ' + bytes);
process.stdout.write(JSON.stringify({ load: split(t0, t1), put: split(t1, t2), minio: m1 - m0, seconds: (w1 - w0) / 1000, rssMB: process.memoryUsage().rss / 1e6 }) + '\n');
process.exit(0);
`;

interface Result {
  load: { main: number; other: number };
  put: { main: number; other: number };
  minio: number;
  seconds: number;
  rssMB: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '42.5' },
      runs: { type: 'string', default: '5' },
      'part-size': { type: 'string' },
      concurrency: { type: 'string' },
      'tykdr-root': { type: 'string' },
      compare: { type: 'string', multiple: true },
      'object-lock': { type: 'boolean', default: false },
      tls: { type: 'boolean', default: false },
      'node-args': { type: 'string', default: '' },
      'conn-mbps': { type: 'string', default: '0' },
    },
  });
  const root = path.resolve(values['tykdr-root'] ?? repoRoot);
  const others = (values.compare ?? []).map((d) => path.resolve(d));
  for (const r of [root, ...others]) {
    if (!existsSync(path.join(r, 'dist/backends/stores/registry.js'))) throw new Error(`${r}/dist is missing: run npx tsc -p tsconfig.json`);
  }
  const runs = Number(values.runs);
  for (const l of machineLines()) log(l);
  const minio = await startMinioServer(values.tls!);
  // The bucket (with Object Lock when asked) through the SDK of this checkout.
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const admin = new S3Client({
    endpoint: minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: KEY, secretAccessKey: SECRET },
    ...(minio.ca ? { requestHandler: { httpsAgent: new https.Agent({ ca: readFileSync(minio.ca) }) } } : {}),
  });
  await admin.send(new CreateBucketCommand({ Bucket: 'bench', ObjectLockEnabledForBucket: values['object-lock'] }));
  admin.destroy();
  const folder = await tempDir('store');
  const connRate = Number(values['conn-mbps']) * MB;
  if (connRate > 0 && values.tls) throw new Error('--conn-mbps is for http: the proxy passes bytes, TLS would need its certificate');
  const u = new URL(minio.endpoint);
  const proxy = connRate > 0 ? await rateProxy({ host: u.hostname, port: Number(u.port) }, connRate) : undefined;
  const s3 = {
    kind: 's3', bucket: 'bench', prefix: '', region: 'us-east-1', endpoint: proxy ? `http://127.0.0.1:${proxy.port}` : minio.endpoint, forcePathStyle: true,
    accessKeyId: KEY, secretAccessKey: SECRET,
    partSizeMiB: Number(values['part-size'] ?? 8), uploadConcurrency: Number(values.concurrency ?? 2),
    ...(values['object-lock'] ? { objectLock: { mode: 'GOVERNANCE', days: 1 } } : {}),
  };
  const local = { kind: 'local', path: folder };
  const contenders: Array<[string, object, string]> = [['local', local, root], ['s3', s3, root]];
  others.forEach((dir, i) => contenders.push([`s3 (compare${others.length > 1 ? ` ${i + 1}` : ''})`, s3, dir]));
  const results: Record<string, Result[]> = Object.fromEntries(contenders.map(([name]) => [name, []]));
  for (let r = 1; r <= runs; r++) {
    // Every other round in reverse order, so neither side always runs first.
    for (const [name, cfg, dir] of r % 2 === 1 ? contenders : [...contenders].reverse()) {
      const cfgJson = JSON.stringify(cfg);
      const res = await run(process.execPath, [...values['node-args']!.split(/\s+/).filter(Boolean), '--input-type=module', '-e', CHILD, dir, cfgJson, values.mb!, String(minio.pid), String(CLK_TCK)], {
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...(minio.ca ? { NODE_EXTRA_CA_CERTS: minio.ca } : {}) },
      });
      if (res.code !== 0) throw new Error(`${name} run ${r} failed: ${res.stderr}`);
      const out = JSON.parse(res.stdout.trim().split('\n').pop()!) as Result;
      results[name]!.push(out);
      log(`run ${r} ${name}: load ${(out.load.main + out.load.other).toFixed(2)} CPU-s, put main ${out.put.main.toFixed(2)} + other ${out.put.other.toFixed(2)} CPU-s, minio ${out.minio.toFixed(2)}, ${out.seconds.toFixed(2)} s, RSS at the end ${out.rssMB.toFixed(0)} MB (the body itself is held in memory)`);
    }
  }
  const f = (x: number) => x.toFixed(2);
  const rows = Object.entries(results).map(([name, rs]) => [
    name,
    f(median(rs.map((x) => x.load.main + x.load.other))),
    f(median(rs.map((x) => x.put.main))),
    f(median(rs.map((x) => x.put.other))),
    f(median(rs.map((x) => x.put.main + x.put.other))),
    f(median(rs.map((x) => x.load.main + x.load.other + x.put.main + x.put.other))),
    f(median(rs.map((x) => x.minio))),
    f(median(rs.map((x) => x.seconds))),
  ]);
  const out = [
    `store put benchmark: one ${values.mb} MB object (random, chunks of 65,536 and 16 bytes), ${runs} runs, medians`,
    ...machineLines(),
    `command: npx tsx bench/s3-put.ts ${process.argv.slice(2).join(' ')}`,
    `tykdr: ${describeCheckout(root)}${others.map((d, i) => `; compare${others.length > 1 ? ` ${i + 1}` : ''}: ${describeCheckout(d)}`).join('')}; S3 partSizeMiB ${s3.partSizeMiB}, uploadConcurrency ${s3.uploadConcurrency}${values['object-lock'] ? ', Object Lock' : ''}; MinIO over ${values.tls ? 'https' : 'http'}${proxy ? `, each connection at ${values['conn-mbps']} MB/s` : ''}; body ${fmtMB(Math.round(Number(values.mb) * 1e6))} MB`,
    '',
    table(['store', 'load+check CPU-s', 'put main CPU-s', 'put other threads', 'put CPU-s', 'total CPU-s', 'minio CPU-s', 'put s'], rows),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

await runMain(main);
