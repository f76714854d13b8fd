/**
 * Store download benchmark: one large object read from S3 (a local MinIO) by tykdr's S3Store.get, as a restore,
 * verify or copy reads it, with `downloadConcurrency` 1 (one connection, as before ranged downloads) and the values
 * given, against curl (`--aws-sigv4`, one connection) on the same object in the same rounds. With --conn-mbps the
 * store is reached through a proxy that serves each connection at that rate (bench/lib.ts rateProxy), as S3 serves
 * each connection at a limited rate; 0 reaches MinIO directly (loopback: what ranges cost where the link is not the
 * limit). Each tykdr run is a fresh node process that hashes what it reads (SHA-256) and must get the object's bytes;
 * curl's output is hashed too. Prints wall and CPU seconds, MB/s and peak RSS; asserts nothing else.
 *
 *   npx tsx bench/s3-get.ts [--mb 512] [--runs 3] [--conn-mbps 50] [--concurrency 4,8] [--part-size MiB] [--tykdr-root DIR]
 *
 * Needs dist/ (npm run build) and .tools/bin/minio (bash scripts/tools.sh).
 */
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CLK_TCK, describeCheckout, fmtMB, installCleanup, log, machineLines, MB, median, MINIO_KEY, MINIO_SECRET, rateProxy, repoRoot, run, runMain, startMinioServer, table,
} from './lib.js';

installCleanup();

/** The child: plain ESM run by node itself. Prints one JSON line. */
const CHILD = String.raw`
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
const [root, cfgJson, key, clk] = process.argv.slice(1);
const cfg = JSON.parse(cfgJson);
const s = cfg.secretAccessKey; cfg.secretAccessKey = { reveal: () => s };
function cpu() {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[11]) + Number(x[12])) / Number(clk);
}
const { S3Store } = await import(root + '/dist/backends/stores/s3-store.js');
const store = new S3Store(cfg, {});
const retries = [];
const c0 = cpu();
const w0 = performance.now();
const hash = createHash('sha256');
let bytes = 0;
for await (const chunk of await store.get(key)) { hash.update(chunk); bytes += chunk.length; }
const seconds = (performance.now() - w0) / 1000;
const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
process.stdout.write(JSON.stringify({ seconds, cpu: cpu() - c0, bytes, sha: hash.digest('hex'), rss: hwm }) + '\n');
process.exit(0);
`;

interface Row {
  seconds: number;
  cpu: number;
  rss: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '512' },
      runs: { type: 'string', default: '3' },
      'conn-mbps': { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '4,8' },
      'part-size': { type: 'string', default: '8' },
      'tykdr-root': { type: 'string' },
    },
  });
  const root = path.resolve(values['tykdr-root'] ?? repoRoot);
  if (!existsSync(path.join(root, 'dist/backends/stores/s3-store.js'))) throw new Error(`${root}/dist is missing: run npm run build`);
  const runs = Number(values.runs);
  const connRate = Number(values['conn-mbps']) * MB;
  const levels = [1, ...values.concurrency!.split(',').map(Number).filter((n) => n > 1)];
  for (const l of machineLines()) log(l);

  const minio = await startMinioServer(false);
  const direct = new URL(minio.endpoint);
  const proxy = connRate > 0 ? await rateProxy({ host: direct.hostname, port: Number(direct.port) }, connRate) : undefined;
  const endpoint = proxy ? `http://127.0.0.1:${proxy.port}` : minio.endpoint;
  const { S3Client, CreateBucketCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const admin = new S3Client({ endpoint: minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: MINIO_KEY, secretAccessKey: MINIO_SECRET } });
  await admin.send(new CreateBucketCommand({ Bucket: 'bench' }));
  const bytes = Math.round(Number(values.mb) * MB);
  // Random bytes, as an age object is; put in one request straight to MinIO (the upload is not what is measured).
  const data = randomFillSync(Buffer.allocUnsafe(bytes));
  const want = createHash('sha256').update(data).digest('hex');
  await admin.send(new PutObjectCommand({ Bucket: 'bench', Key: 'object.bin', Body: data }));
  admin.destroy();
  log(`object: ${fmtMB(bytes)} MB; ${proxy ? `each connection served at ${values['conn-mbps']} MB/s (rate proxy)` : 'MinIO reached directly'}`);

  const names = ['curl (1 connection)', ...levels.map((c) => `tykdr, downloadConcurrency ${c}`)];
  const rows = new Map<string, Row[]>(names.map((n) => [n, []]));
  for (let r = 1; r <= runs; r++) {
    for (const name of r % 2 === 1 ? names : [...names].reverse()) {
      let row: Row;
      if (name.startsWith('curl')) {
        // bash's `times` gives the pipeline's children CPU; sha256sum's share is subtracted by timing it alone below.
        const script = `s=$(date +%s.%N); curl -sS --fail --aws-sigv4 'aws:amz:us-east-1:s3' --user '${MINIO_KEY}:${MINIO_SECRET}' '${endpoint}/bench/object.bin' -o /dev/stdout | sha256sum; e=$(date +%s.%N); times; echo "$s $e"`;
        const res = await run('bash', ['-c', script]);
        if (res.code !== 0) throw new Error(`curl failed: ${res.stderr}`);
        const lines = res.stdout.trim().split('\n');
        if (!lines[0]!.startsWith(want)) throw new Error(`curl read other bytes: ${lines[0]}`);
        const [s, e] = lines.at(-1)!.split(' ').map(Number) as [number, number];
        const sec = (t: string) => t.split(/\s+/).reduce((a, x) => { const m = /(\d+)m([\d.]+)s/.exec(x); return m ? a + Number(m[1]) * 60 + Number(m[2]) : a; }, 0);
        row = { seconds: e - s, cpu: sec(lines[2]!), rss: 0 };
      } else {
        const concurrency = Number(/(\d+)$/.exec(name)![1]);
        const cfg = {
          kind: 's3', bucket: 'bench', prefix: '', region: 'us-east-1', endpoint, forcePathStyle: true, accessKeyId: MINIO_KEY, secretAccessKey: MINIO_SECRET,
          partSizeMiB: Number(values['part-size']), uploadConcurrency: 2, downloadConcurrency: concurrency, stallTimeout: '60s', connectTimeout: '10s', maxAttempts: 5,
        };
        const res = await run(process.execPath, ['--input-type=module', '-e', CHILD, root, JSON.stringify(cfg), 'object.bin', String(CLK_TCK)], {
          env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        });
        if (res.code !== 0) throw new Error(`${name} failed: ${res.stderr}`);
        const out = JSON.parse(res.stdout.trim().split('\n').pop()!) as { seconds: number; cpu: number; bytes: number; sha: string; rss: number };
        if (out.bytes !== bytes || out.sha !== want) throw new Error(`${name} read ${out.bytes} bytes (sha ${out.sha}), the object has ${bytes} (sha ${want})`);
        row = { seconds: out.seconds, cpu: out.cpu, rss: out.rss };
      }
      rows.get(name)!.push(row);
      log(`round ${r}, ${name}: ${row.seconds.toFixed(2)} s, ${(bytes / MB / row.seconds).toFixed(1)} MB/s, ${row.cpu.toFixed(2)} CPU-s${row.rss ? `, peak RSS ${fmtMB(row.rss, 0)} MB` : ''}`);
    }
  }
  const base = median(rows.get(names[0]!)!.map((x) => x.seconds));
  const f = (x: number) => x.toFixed(2);
  const out = [
    `store get benchmark: one ${fmtMB(bytes)} MB object, ${runs} rounds, medians`,
    ...machineLines(),
    `command: npx tsx bench/s3-get.ts ${process.argv.slice(2).join(' ')}`,
    `tykdr: ${describeCheckout(root)}; ranges of partSizeMiB ${values['part-size']}; ${proxy ? `each connection at ${values['conn-mbps']} MB/s (rate proxy), ${proxy.connections()} connections in all` : 'MinIO directly (loopback)'}`,
    'curl CPU-s include sha256sum over its output; tykdr CPU-s include its SHA-256 of what it reads (node, all threads)',
    '',
    table(
      ['reader', 'wall s', 'MB/s', 'against curl', 'CPU-s', 'peak RSS MB'],
      names.map((n) => {
        const rs = rows.get(n)!;
        const s = median(rs.map((x) => x.seconds));
        return [n, f(s), (bytes / MB / s).toFixed(1), `${(s / base).toFixed(2)}x`, f(median(rs.map((x) => x.cpu))), rs[0]!.rss ? fmtMB(median(rs.map((x) => x.rss)), 0) : '-'];
      }),
    ),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

await runMain(main);
