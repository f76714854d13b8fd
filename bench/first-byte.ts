/**
 * Start-up to the first byte, and the memory it takes: `tykdr backup` of a small Redis, to a folder and to MinIO, from
 * spawn to the moment Redis has its SYNC (its `sync_full` count went up), and the node process's resident memory then
 * (VmRSS, and VmHWM: the most it had held so far). Redis waits `repl-diskless-sync-delay` (2 s here) before it sends
 * the first byte, so the process is read while it waits for that byte, whatever the polling's lag. Asserts nothing,
 * but every backup must exit 0 with a manifest of the keys loaded.
 *
 *   npx tsx bench/first-byte.ts [--runs 5] [--tykdr-root DIR] [--summary-json FILE]
 *
 * One untimed backup to each store first (the command's code cache, which a real installation has after its first
 * run). Then --runs rounds, the two stores in turns, the order reversed every other round; medians. The time is
 * measured by polling INFO every 10 ms, so it reads up to 10 ms late; bench/redis-backup.ts gives the same phase from
 * the manifest's timestamps. Needs dist/ built, redis-server, redis-cli, age-keygen and MinIO (bash scripts/tools.sh).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  fillRedis, installCleanup, log, median, MINIO_KEY, MINIO_SECRET, must, parseInfo, redisCall, repoRoot, runMain, sleep, startMinioServer, startRedis,
  table, tempDir, track,
} from './lib.js';

installCleanup();
// This process's own S3 client (the bucket) would print the SDK's Node version warning.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const KEYS = 1000;
const SYNC_DELAY_S = 2;

interface Sample {
  store: 'folder' | 's3';
  round: number;
  /** spawn -> Redis counted the SYNC, seconds */
  syncS: number;
  rssMB: number;
  hwmMB: number;
}

/** VmRSS and VmHWM of a process, MB (10^6 bytes). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: (kb('VmRSS') * 1024) / 1e6, hwm: (kb('VmHWM') * 1024) / 1e6 };
}

async function syncCount(port: number): Promise<number> {
  const info = parseInfo((await redisCall(port, ['INFO', 'stats'])).value);
  const n = Number(info.sync_full);
  if (!Number.isInteger(n)) throw new Error('INFO stats has no sync_full');
  return n;
}

await runMain(async () => {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '5' }, 'tykdr-root': { type: 'string', default: repoRoot }, 'summary-json': { type: 'string' } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${values.runs}: a whole number >= 1`);
  const bin = path.join(path.resolve(values['tykdr-root']!), 'bin/run.js');
  const work = await tempDir('first-byte');

  const redis = await startRedis({ extra: ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', String(SYNC_DELAY_S)] });
  await fillRedis(redis.port, 0, KEYS);
  const minio = await startMinioServer(false);
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const admin = new S3Client({ endpoint: minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: MINIO_KEY, secretAccessKey: MINIO_SECRET } });
  await admin.send(new CreateBucketCommand({ Bucket: 'first-byte' }));
  admin.destroy();

  const identity = path.join(work, 'identity.txt');
  await must('age-keygen', ['-o', identity]);
  const recipient = (await must('age-keygen', ['-y', identity])).trim();
  const common = `encryption:\n  recipients: [${recipient}]\ncomponents:\n  redis:\n    kind: redis\n    host: 127.0.0.1\n    port: ${redis.port}\n`;
  const configs = {
    folder: path.join(work, 'folder.yaml'),
    s3: path.join(work, 's3.yaml'),
  };
  await writeFile(configs.folder, `store:\n  kind: local\n  path: ${path.join(work, 'store')}\n${common}`);
  await writeFile(
    configs.s3,
    `store:\n  kind: s3\n  bucket: first-byte\n  endpoint: ${minio.endpoint}\n  forcePathStyle: true\n  accessKeyId: \${BENCH_S3_KEY}\n  secretAccessKey: \${BENCH_S3_SECRET}\n${common}`,
  );
  const env = { ...process.env, BENCH_S3_KEY: MINIO_KEY, BENCH_S3_SECRET: MINIO_SECRET, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

  /** One backup: its SYNC's time and memory, then its exit and manifest checked. */
  async function backup(store: 'folder' | 's3', round: number): Promise<Sample> {
    const before = await syncCount(redis.port);
    const t0 = performance.now();
    const child = track(spawn(process.execPath, [bin, 'backup', '-c', configs[store], '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.on('error', () => undefined); // a failed spawn ends as a close without an exit code, handled below
    let closed = false;
    const exited = new Promise<number | null>((r) => child.once('close', (c) => ((closed = true), r(c))));
    let sample: Sample | null = null;
    const deadline = t0 + 60_000;
    while (sample === null && !closed && child.exitCode === null && child.signalCode === null) {
      if (performance.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`backup to the ${store} store: Redis did not count its SYNC within 60 s`);
      }
      if ((await syncCount(redis.port)) > before) {
        const syncS = (performance.now() - t0) / 1000;
        const m = memoryOf(child.pid!);
        sample = { store, round, syncS, rssMB: m.rss, hwmMB: m.hwm };
        break;
      }
      await sleep(10);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const code = await exited.finally(() => clearTimeout(timer));
    if (code !== 0) throw new Error(`backup to the ${store} store exited ${code}: ${stderr.trim().slice(-2000)}`);
    if (sample === null) throw new Error(`backup to the ${store} store exited before Redis counted its SYNC (${((performance.now() - t0) / 1000).toFixed(2)} s): ${stdout.slice(0, 300)} ${stderr.slice(-300)}`);
    const out = JSON.parse(stdout) as { manifest: { components: { redis: { source: { total_keys: number } } } } };
    const keys = out.manifest.components.redis.source.total_keys;
    if (keys !== KEYS) throw new Error(`backup to the ${store} store: manifest total_keys ${keys}, ${KEYS} loaded`);
    return sample;
  }

  log('untimed warm-up backups (the command\'s code cache)');
  await backup('folder', 0);
  await backup('s3', 0);
  const samples: Sample[] = [];
  for (let r = 1; r <= runs; r++) {
    const order: Array<'folder' | 's3'> = r % 2 === 1 ? ['folder', 's3'] : ['s3', 'folder'];
    for (const store of order) {
      const s = await backup(store, r);
      samples.push(s);
      log(`round ${r}, ${store}: SYNC at ${s.syncS.toFixed(3)} s, RSS ${s.rssMB.toFixed(1)} MB (peak so far ${s.hwmMB.toFixed(1)} MB)`);
    }
  }

  const summary = (['folder', 's3'] as const).map((store) => {
    const mine = samples.filter((s) => s.store === store);
    return { store, runs: mine.length, syncS: median(mine.map((s) => s.syncS)), rssMB: median(mine.map((s) => s.rssMB)), hwmMB: median(mine.map((s) => s.hwmMB)), hwmMaxMB: Math.max(...mine.map((s) => s.hwmMB)) };
  });
  console.log(`Start-up to the first byte: tykdr backup of ${KEYS.toLocaleString('en')} keys; Redis waits ${SYNC_DELAY_S} s after the SYNC before the first byte`);
  console.log(`tykdr: ${bin}; node ${process.version}${process.env.NODE_EXTRA_CA_CERTS ? `; NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS}` : ''}`);
  console.log('');
  console.log(
    table(
      ['store', 'round', 'spawn to SYNC s', 'RSS at SYNC MB', 'peak RSS by SYNC MB'],
      samples.map((s) => [s.store, String(s.round), s.syncS.toFixed(3), s.rssMB.toFixed(1), s.hwmMB.toFixed(1)]),
    ),
  );
  console.log('');
  console.log(`Medians of ${runs} rounds:`);
  console.log(table(['store', 'spawn to SYNC s', 'RSS at SYNC MB', 'peak RSS by SYNC MB (highest)'], summary.map((s) => [s.store, s.syncS.toFixed(3), s.rssMB.toFixed(1), `${s.hwmMB.toFixed(1)} (${s.hwmMaxMB.toFixed(1)})`])));
  if (values['summary-json']) await writeFile(values['summary-json'], JSON.stringify(summary, null, 2));
});
