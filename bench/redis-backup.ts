/**
 * Backup benchmark: `tykdr backup` of a Redis holding N Tyk-like `apikey-*` sessions to a local MinIO,
 * against `redis-cli --rdb - | zstd -1 | age -r KEY > file`, in the same run on the same server.
 * Prints figures; asserts nothing (the exit code is 0 unless the benchmark itself could not run).
 *
 *   npx tsx bench/redis-backup.ts [--sizes 100000,1000000] [--keys N] [--runs 1] [--max-runs 3] [--no-local] [--tls]
 *       [--part-size MiB] [--profile] [--profile-dir DIR] [--tykdr-root DIR] [--label TEXT] [--node-args="..."]
 *       [--quiet-wait 180]
 *
 * --keys N is short for --sizes N. --runs R: R rounds per size (each contender once, the order reversed
 * every other round) undisturbed by other processes; disturbed rounds are repeated, up to --max-runs rounds
 * in all (default 3R). --no-local skips the extra tykdr-to-local-folder row. --tls runs MinIO over https (a
 * throwaway CA, trusted by tykdr through NODE_EXTRA_CA_CERTS), as S3 itself is reached: tykdr then sends object data
 * with SigV4's UNSIGNED-PAYLOAD (no SHA-256 of every byte) and the bytes are encrypted by TLS instead. --part-size sets the S3 store's
 * partSizeMiB (default: tykdr's, 8). --profile adds one untimed tykdr run at the largest size under
 * `node --cpu-prof` and prints where its main thread spent its time (--profile-dir keeps the .cpuprofile;
 * bench/cpuprofile-top.ts summarizes one). --tykdr-root runs another built checkout's bin/run.js (to compare
 * a change against the baseline in the same way; --label annotates the report). --node-args passes flags to
 * tykdr's node; write the "=", e.g. --node-args=--single-threaded-gc. Before each timed run the benchmark
 * waits up to --quiet-wait seconds (0: not at all) for the machine to be quiet, and it reports the CPU other
 * processes used during each run.
 *
 * Everything (redis-server, MinIO, temp folders) is started here and removed on exit, failure or Ctrl-C.
 * Needs: `npm run build` (dist/), and redis-server, redis-cli, zstd, age, age-keygen and
 * .tools/bin/minio (bash scripts/tools.sh). bench/run.sh does all of that.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { summarizeProfile } from './cpuprofile-top.js';
import {
  CLK_TCK, childPids, cpuSeconds, delayProxy, describeCheckout, fillRedis, fmtMB, freePort, installCleanup, log, machineBusySeconds, MB, median, MINIO,
  MINIO_KEY, MINIO_SECRET, POLL_MS, repoRoot, run, type RunResult, runMain, sleep, startMinioServer, table, tempDir, track, version, vmHwmKb,
} from './lib.js';

// As bin/run.js does: the AWS SDK otherwise warns on load that its 2027 releases need Node 22.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { CreateBucketCommand, GetObjectCommand, S3Client: S3 } = await import('@aws-sdk/client-s3');

const TARGET_RATIO = 1.1;
const TARGET_RSS_MB = 200;
/** A row during which other processes used more CPU than this (seconds) is left out of the summary's times. */
const DISTURBED_CPU_S = 0.5;

// Cleanup, temp folders, ports, /proc readings, run(), median(), table(): bench/lib.ts. Every child and temp folder
// is registered there; Ctrl-C, SIGTERM, errors and normal exit remove them.
installCleanup();

// ---------------------------------------------------------------------------------------------------------
// Small helpers

/** lib.ts's must(), but its error carries the command's whole stderr (not stdout, not cut to 3000 characters). */
async function must(cmd: string, args: string[], opts: { input?: string } = {}): Promise<string> {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
  return res.stdout.trim();
}

/** user+system CPU seconds of one thread, or null when it is gone. */
function threadCpu(pid: number, tid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[14 - 3]) + Number(f[15 - 3])) / CLK_TCK;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Servers

interface Redis {
  port: number;
  pid: number;
  cli(...args: string[]): Promise<string>;
}

async function startRedis(): Promise<Redis> {
  const dir = await tempDir('redis');
  const port = await freePort();
  const child = track(
    spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--repl-diskless-sync-delay', '0', '--daemonize', 'no', '--logfile', path.join(dir, 'redis.log'),
    ], { stdio: 'ignore' }),
  );
  const cli = (...args: string[]) => must('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode}: ${await readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => '')}`);
    if ((await cli('PING').catch(() => '')) === 'PONG') break;
    if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 15 s');
    await sleep(50);
  }
  return { port, pid: child.pid!, cli };
}

interface Minio {
  endpoint: string;
  pid: number;
  accessKeyId: string;
  secretAccessKey: string;
  client: S3Client;
  /** Over https: the CA file tykdr is told to trust (NODE_EXTRA_CA_CERTS). */
  ca?: string;
}

/** MinIO (bench/lib.ts), its bucket made; with `tls` over https, the bench's own client trusting its CA. */
async function startMinio(bucket: string, tls: boolean): Promise<Minio> {
  const m = await startMinioServer(tls);
  const client = new S3({
    endpoint: m.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: MINIO_KEY, secretAccessKey: MINIO_SECRET },
    ...(m.ca ? { requestHandler: { httpsAgent: new https.Agent({ ca: readFileSync(m.ca) }) } } : {}),
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return { endpoint: m.endpoint, pid: m.pid, accessKeyId: MINIO_KEY, secretAccessKey: MINIO_SECRET, client, ...(m.ca ? { ca: m.ca } : {}) };
}

// ---------------------------------------------------------------------------------------------------------
// One measured contender: `bash -c SCRIPT`, timed from spawn to exit. Peak RSS is the VmHWM of bash's
// children (node for tykdr; redis-cli, zstd and age for the baseline), polled every 50 ms; VmHWM never
// decreases, so the last reading of each process is its peak (up to the last 50 ms of its life).
// CPU time of bash's children is exact: bash's `times` builtin, after they were reaped.

interface Measured extends RunResult {
  seconds: number;
  /** Wall-clock epoch ms of spawn and exit, to place tykdr's manifest timestamps on the same timeline. */
  spawnedAt: number;
  exitedAt: number;
  /** pid -> [comm, peak kB] */
  peaks: Map<number, [string, number]>;
  /** pid -> tid -> CPU seconds (user+sys), last reading: per-thread CPU of the command's processes. */
  threads: Map<number, Map<number, number>>;
  cpuUser: number;
  cpuSys: number;
}

async function measured(script: string, env: NodeJS.ProcessEnv, timesFile: string): Promise<Measured> {
  const full = `set -o pipefail\n${script}\nrc=$?\ntimes > '${timesFile}'\nexit $rc`;
  const peaks = new Map<number, [string, number]>();
  const threads = new Map<number, Map<number, number>>();
  const spawnedAt = Date.now();
  const t0 = performance.now();
  const child = track(spawn('bash', ['-c', full], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: repoRoot, detached: true }), true);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const poll = () => {
    for (const pid of childPids(child.pid!)) {
      const kb = vmHwmKb(pid);
      if (kb === null) continue;
      let comm: string; // read every time: a child is still "bash" between fork and exec
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      peaks.set(pid, [comm, Math.max(kb, peaks.get(pid)?.[1] ?? 0)]);
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      const perThread = threads.get(pid) ?? new Map<number, number>();
      threads.set(pid, perThread);
      for (const tid of tids) {
        const cpu = threadCpu(pid, Number(tid));
        if (cpu !== null) perThread.set(Number(tid), cpu);
      }
    }
  };
  const timer = setInterval(poll, POLL_MS);
  poll();
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  const seconds = (performance.now() - t0) / 1000;
  const exitedAt = Date.now();
  clearInterval(timer);
  await new Promise<void>((r) => (child.stdout!.readableEnded ? r() : child.stdout!.once('end', () => r())));
  const times = await readFile(timesFile, 'utf8').catch(() => '');
  const lines = times.trim().split('\n');
  const secs = (s: string | undefined) => {
    const m = /(\d+)m([\d.]+)s/.exec(s ?? '');
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  };
  const [cu, cs] = (lines[1] ?? '').split(/\s+/);
  return { code, stdout, stderr, seconds, spawnedAt, exitedAt, peaks, threads, cpuUser: secs(cu), cpuSys: secs(cs) };
}

// ---------------------------------------------------------------------------------------------------------
// Verification: decrypt and decompress the whole object with the age and zstd CLIs, check the RDB magic,
// count the plaintext, and hash the stored bytes.

interface Verified {
  magic: string;
  plaintextBytes: number;
  storedBytes: number;
  sha256: string;
}

async function verifyObject(body: Readable, identity: string): Promise<Verified> {
  const child = track(spawn('bash', ['-c', `set -o pipefail; age -d -i '${identity}' | zstd -d -q`], { stdio: ['pipe', 'pipe', 'pipe'] }));
  const hash = createHash('sha256');
  let storedBytes = 0;
  let plaintextBytes = 0;
  let head = Buffer.alloc(0);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    if (head.length < 9) head = Buffer.concat([head, d.subarray(0, 9 - head.length)]);
    plaintextBytes += d.length;
  });
  const closed = new Promise<number | null>((r) => child.once('close', r));
  child.stdin!.on('error', () => undefined);
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    storedBytes += (chunk as Buffer).length;
    if (child.exitCode !== null) break;
    if (!child.stdin!.write(chunk)) await Promise.race([new Promise((r) => child.stdin!.once('drain', r)), closed]);
  }
  child.stdin!.end();
  const code = await closed;
  if (code !== 0) throw new Error(`age -d | zstd -d failed (exit ${code}): ${stderr.trim()}`);
  return { magic: head.toString('latin1'), plaintextBytes, storedBytes, sha256: hash.digest('hex') };
}

// ---------------------------------------------------------------------------------------------------------
// The benchmark

interface Row {
  keys: number;
  run: number;
  contender: 'baseline' | 'tykdr-s3' | 'tykdr-local';
  seconds: number;
  rdbBytes: number;
  storedBytes: number;
  peakKb: number;
  peakDetail: string;
  /** Per process: CPU seconds, and for a multi-threaded one its main thread and busiest other thread. */
  cpuDetail: string;
  clientCpu: number;
  redisCpu: number;
  minioCpu: number;
  /** Busy CPU of everything else on the machine from spawn to 1.5 s after exit: other people's work, the kernel. */
  otherCpu: number;
  totalKeys?: number;
  facts?: string;
  /** tykdr only, seconds: spawn -> SYNC sent (node start-up, config, checks), SYNC -> object stored, -> exit. */
  phases?: { startup: number; transfer: number; finish: number };
  magic: string;
}

interface Setup {
  work: string;
  redis: Redis;
  minio: Minio;
  identity: string;
  recipient: string;
  s3Config: string;
  localConfig: string;
  localStore: string;
  env: NodeJS.ProcessEnv;
  /** The tykdr checkout whose bin/run.js runs (default: this one). */
  tykdrRoot: string;
}

/**
 * Waits (up to maxWaitS) until the machine has been quiet for two consecutive seconds: busy CPU under a quarter
 * of one CPU, not counting this benchmark. On a shared machine, other work would otherwise land in a timing.
 */
async function waitQuiet(maxWaitS: number): Promise<void> {
  const deadline = Date.now() + maxWaitS * 1000;
  let quiet = 0;
  let said = false;
  while (quiet < 2) {
    const b0 = machineBusySeconds();
    const c0 = process.cpuUsage();
    await sleep(1000);
    const c = process.cpuUsage(c0);
    const busy = machineBusySeconds() - b0 - (c.user + c.system) / 1e6;
    quiet = busy < 0.25 ? quiet + 1 : 0;
    if (quiet === 0 && Date.now() > deadline) {
      log(`  the machine is still busy (${busy.toFixed(2)} CPU-s/s used by other processes); measuring anyway`);
      return;
    }
    if (quiet === 0 && !said) {
      log(`  waiting for other processes to go quiet (${busy.toFixed(2)} CPU-s/s busy), up to ${maxWaitS} s`);
      said = true;
    }
  }
}

async function runContender(s: Setup, contender: Row['contender'], keys: number, runNo: number, extraNodeArgs: string[] = []): Promise<Row> {
  const timesFile = path.join(s.work, 'times.txt');
  const outFile = path.join(s.work, 'baseline.rdb.zst.age');
  const redisBefore = cpuSeconds(s.redis.pid, { strict: true });
  const minioBefore = cpuSeconds(s.minio.pid, { strict: true });
  const busyBefore = machineBusySeconds();
  const benchBefore = process.cpuUsage();
  let script: string;
  if (contender === 'baseline') {
    script = `redis-cli -h 127.0.0.1 -p ${s.redis.port} --rdb - 2>'${s.work}/redis-cli.log' | zstd -1 -q | age -r '${s.recipient}' > '${outFile}'`;
  } else {
    const cfg = contender === 'tykdr-s3' ? s.s3Config : s.localConfig;
    script = `'${process.execPath}' ${extraNodeArgs.map((x) => `'${x}'`).join(' ')} '${s.tykdrRoot}/bin/run.js' backup -c '${cfg}' --json`;
  }
  const m = await measured(script, s.env, timesFile);
  if (m.code !== 0) throw new Error(`${contender} exited ${m.code}:\n${m.stderr.trim().slice(-3000)}`);
  if (contender !== 'baseline' && m.stderr.trim() !== '') log(`  tykdr stderr: ${m.stderr.trim().slice(-2000)}`);
  // Let Redis reap its fork child and MinIO finish its bookkeeping before reading their CPU counters.
  await sleep(1500);
  const redisAfter = cpuSeconds(s.redis.pid, { strict: true });
  const minioAfter = cpuSeconds(s.minio.pid, { strict: true });
  const busy = machineBusySeconds() - busyBefore;
  const benchCpu = process.cpuUsage(benchBefore);
  const redisCpu = redisAfter.self + redisAfter.children - redisBefore.self - redisBefore.children;
  const minioCpu = minioAfter.self - minioBefore.self;
  const peakKb = [...m.peaks.values()].reduce((n, [, kb]) => n + kb, 0);
  const peakDetail = [...m.peaks.values()].map(([comm, kb]) => `${comm} ${fmtMB(kb * 1024)}`).join(' + ');
  const cpuDetail = [...m.threads].map(([pid, tids]) => {
    const comm = m.peaks.get(pid)?.[0] ?? '?';
    const total = [...tids.values()].reduce((a, b) => a + b, 0);
    if (tids.size <= 1) return `${comm} ${total.toFixed(2)}`;
    const main = tids.get(pid) ?? 0;
    const others = [...tids].filter(([tid]) => tid !== pid).map(([, c]) => c).sort((a, b) => b - a);
    return `${comm} ${total.toFixed(2)} (main thread ${main.toFixed(2)}, busiest other thread ${others[0]!.toFixed(2)}, ` +
      `${others.length - 1} more threads ${others.slice(1).reduce((a, b) => a + b, 0).toFixed(2)})`;
  }).join(' + ');
  const clientCpu = m.cpuUser + m.cpuSys;
  const otherCpu = Math.max(0, busy - clientCpu - redisCpu - minioCpu - (benchCpu.user + benchCpu.system) / 1e6);
  const row: Row = {
    keys, run: runNo, contender, seconds: m.seconds, rdbBytes: 0, storedBytes: 0, peakKb, peakDetail, cpuDetail,
    clientCpu, redisCpu, minioCpu, otherCpu, magic: '',
  };

  if (contender === 'baseline') {
    const v = await verifyObject(createReadStream(outFile), s.identity);
    Object.assign(row, { rdbBytes: v.plaintextBytes, storedBytes: v.storedBytes, magic: v.magic });
    await rm(outFile, { force: true });
    return row;
  }
  const out = JSON.parse(m.stdout) as { id: string; manifest: any };
  const redis = out.manifest.components.redis;
  const a = redis.artifact;
  const src = redis.source;
  const objectKey = `snapshots/${out.id}/${a.name}`;
  let body: Readable;
  if (contender === 'tykdr-s3') {
    const got = await s.minio.client.send(new GetObjectCommand({ Bucket: 'tyk-backups', Key: objectKey }));
    body = got.Body as Readable;
  } else {
    body = createReadStream(path.join(s.localStore, objectKey));
  }
  const v = await verifyObject(body, s.identity);
  const problems: string[] = [];
  if (v.sha256 !== a.sha256) problems.push(`sha256 ${v.sha256} != manifest ${a.sha256}`);
  if (v.storedBytes !== a.stored_bytes) problems.push(`stored ${v.storedBytes} != manifest ${a.stored_bytes}`);
  if (v.plaintextBytes !== a.plaintext_bytes) problems.push(`decrypted ${v.plaintextBytes} bytes != manifest plaintext_bytes ${a.plaintext_bytes}`);
  if (!/^REDIS\d{4}$/.test(v.magic)) problems.push(`decrypted object starts with ${JSON.stringify(v.magic)}, not REDISnnnn`);
  if (src.total_keys !== keys) problems.push(`manifest total_keys ${src.total_keys} != ${keys} keys loaded`);
  if (problems.length > 0) throw new Error(`${contender} snapshot ${out.id} failed verification: ${problems.join('; ')}`);
  if (contender === 'tykdr-local') await rm(path.join(s.localStore, 'snapshots', out.id), { recursive: true, force: true });
  const classes = src.key_classes?.['0'] ?? {};
  const syncAt = Date.parse(redis.consistent_at);
  const storedAt = Date.parse(redis.started_at) + redis.duration_ms;
  row.phases = { startup: (syncAt - m.spawnedAt) / 1000, transfer: (storedAt - syncAt) / 1000, finish: (m.exitedAt - storedAt) / 1000 };
  Object.assign(row, {
    rdbBytes: a.plaintext_bytes,
    storedBytes: a.stored_bytes,
    magic: v.magic,
    totalKeys: src.total_keys,
    facts:
      `snapshot ${out.id}: total_keys=${src.total_keys} (db0 must=${classes.must ?? '?'}), rdb_version=${src.rdb_version}, ` +
      `rdb_checksum=${src.rdb_checksum}, transfer=${src.transfer}, redis ${src.redis_version}, plaintext_bytes=${a.plaintext_bytes}, ` +
      `stored_bytes=${a.stored_bytes}, sha256 ${a.sha256.slice(0, 16)}... matches, decrypts to ${JSON.stringify(v.magic)}`,
  });
  return row;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string' },
      sizes: { type: 'string', default: '100000,1000000' },
      runs: { type: 'string', default: '1' },
      'max-runs': { type: 'string' },
      'no-local': { type: 'boolean', default: false },
      tls: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'profile-dir': { type: 'string' },
      'part-size': { type: 'string' },
      'store-delay': { type: 'string' },
      'tykdr-root': { type: 'string' },
      'quiet-wait': { type: 'string', default: '180' },
      'node-args': { type: 'string', default: '' },
      label: { type: 'string' },
      'summary-json': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npx tsx bench/redis-backup.ts [--sizes 100000,1000000] [--keys N] [--runs 1] [--max-runs 3] [--no-local] [--tls]\n' +
        '    [--part-size MiB] [--store-delay MS] [--profile] [--profile-dir DIR] [--tykdr-root DIR] [--label TEXT] [--node-args="..."]\n' +
        '    [--quiet-wait 180] [--summary-json FILE]\n',
    );
    return;
  }
  const sizes = (values.keys ?? values.sizes!).split(',').map((s) => Number(s.replace(/_/g, '')));
  const runs = Number(values.runs);
  const quietWait = Number(values['quiet-wait']);
  const maxRuns = Number(values['max-runs'] ?? 3 * runs);
  if (!Number.isInteger(maxRuns) || maxRuns < runs) throw new Error(`bad --max-runs ${values['max-runs']}: at least --runs`);
  const nodeArgs = values['node-args']!.split(/\s+/).filter(Boolean);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(runs) || runs < 1) {
    throw new Error(`bad --sizes/--keys/--runs: ${values.keys ?? values.sizes} / ${values.runs}`);
  }
  sizes.sort((a, b) => a - b);
  const partSize = values['part-size'] === undefined ? null : Number(values['part-size']);
  if (partSize !== null && (!Number.isInteger(partSize) || partSize < 5)) throw new Error(`bad --part-size ${values['part-size']}: an integer >= 5 (MiB)`);
  if (values['profile-dir'] !== undefined) values.profile = true;
  const tykdrRoot = path.resolve(values['tykdr-root'] ?? repoRoot);
  if (!existsSync(path.join(tykdrRoot, 'dist/commands/backup.js'))) throw new Error(`${tykdrRoot}/dist is missing: run npm run build`);

  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const machine = [
    `machine: ${os.availableParallelism()} CPUs (nproc), ${cpuModel}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${os.release()}`,
    `node ${process.version}; redis-server ${version('redis-server', ['--version'], /v=(\S+)/)}; zstd ${version('zstd', ['-V'], /(v[\d.]+)/)}; ` +
      `age ${version('age', ['--version'], /(\S+)/)}; minio ${existsSync(MINIO) ? readFileSync(path.join(repoRoot, '.tools/bin/.minio-version'), 'utf8').trim() : 'not built'}; ` +
      `tykdr ${JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version}`,
  ];
  for (const l of machine) log(l);

  const work = await tempDir('work');
  log('starting redis-server and MinIO');
  const [redis, minio] = await Promise.all([startRedis(), startMinio('tyk-backups', values.tls!)]);
  // --store-delay MS: tykdr reaches MinIO through a proxy holding every chunk MS each way (a store 2 x MS away).
  const storeDelay = values['store-delay'] === undefined ? 0 : Number(values['store-delay']);
  if (!Number.isFinite(storeDelay) || storeDelay < 0) throw new Error(`bad --store-delay ${values['store-delay']}: milliseconds, 0 or more`);
  let s3Endpoint = minio.endpoint;
  if (storeDelay > 0) {
    const u = new URL(minio.endpoint);
    const proxy = await delayProxy({ host: u.hostname, port: Number(u.port) }, storeDelay);
    u.port = String(proxy.port);
    s3Endpoint = u.toString().replace(/\/$/, '');
    log(`MinIO reached through a proxy delaying every chunk ${storeDelay} ms each way: ${s3Endpoint}`);
  }
  const identity = path.join(work, 'identity.txt');
  await must('age-keygen', ['-o', identity]);
  const recipient = await must('age-keygen', ['-y', identity]);
  const localStore = path.join(work, 'store');
  const common = `encryption:\n  recipients: [${recipient}]\ncompression:\n  algorithm: zstd\n  level: 1\ncomponents:\n  redis:\n    kind: redis\n    host: 127.0.0.1\n    port: ${redis.port}\n`;
  const s3Config = path.join(work, 's3.yaml');
  const localConfig = path.join(work, 'local.yaml');
  await writeFile(
    s3Config,
    `store:\n  kind: s3\n  bucket: tyk-backups\n  endpoint: ${s3Endpoint}\n  forcePathStyle: true\n  accessKeyId: \${BENCH_S3_KEY}\n  secretAccessKey: \${BENCH_S3_SECRET}\n${partSize === null ? '' : `  partSizeMiB: ${partSize}\n`}${common}`,
  );
  await writeFile(localConfig, `store:\n  kind: local\n  path: ${localStore}\n${common}`);
  const env = { ...process.env, BENCH_S3_KEY: minio.accessKeyId, BENCH_S3_SECRET: minio.secretAccessKey, ...(minio.ca ? { NODE_EXTRA_CA_CERTS: minio.ca } : {}) };
  const setup: Setup = { work, redis, minio, identity, recipient, s3Config, localConfig, localStore, env, tykdrRoot };

  const contenders: Row['contender'][] = values['no-local'] ? ['baseline', 'tykdr-s3'] : ['baseline', 'tykdr-s3', 'tykdr-local'];
  const rows: Row[] = [];
  let loaded = 0;
  let warmedUp = false;
  for (const keys of sizes) {
    const t = performance.now();
    log(`loading keys ${loaded.toLocaleString('en')}..${keys.toLocaleString('en')} through redis-cli --pipe`);
    await fillRedis(redis.port, loaded, keys);
    loaded = keys;
    const dbsize = Number(await redis.cli('DBSIZE'));
    if (dbsize !== keys) throw new Error(`DBSIZE ${dbsize} after loading ${keys} keys (duplicate generated key names?)`);
    const mem = /used_memory_human:(\S+)/.exec(await redis.cli('INFO', 'memory'))?.[1];
    log(`${keys.toLocaleString('en')} keys loaded in ${((performance.now() - t) / 1000).toFixed(1)} s; Redis used_memory ${mem}`);
    if (!warmedUp) {
      // One untimed run of each tykdr contender first: a command's first run after a build has no V8 code cache yet
      // (bin/code-cache.js writes it at that run's exit) and starts about 80 ms slower. The rows measure the runs
      // after it, as a daemon's backups are.
      for (const c of contenders.filter((x) => x !== 'baseline')) {
        log(`untimed warm-up run (the command's code cache): ${c}`);
        await runContender(setup, c, keys, 0, nodeArgs);
      }
      warmedUp = true;
    }
    // Rounds until `runs` of them were undisturbed by other processes, or `maxRuns` rounds in all.
    let cleanRounds = 0;
    for (let r = 1; cleanRounds < runs && r <= maxRuns; r++) {
      const order = r % 2 === 1 ? contenders : [...contenders].reverse();
      let disturbed = false;
      for (const c of order) {
        log(`${keys.toLocaleString('en')} keys, round ${r} (${cleanRounds} of ${runs} clean so far, at most ${maxRuns}): ${c}`);
        if (quietWait > 0) await waitQuiet(quietWait);
        const row = await runContender(setup, c, keys, r, nodeArgs);
        disturbed ||= row.otherCpu > DISTURBED_CPU_S;
        log(
          `  ${row.seconds.toFixed(2)} s, RDB ${fmtMB(row.rdbBytes)} MB -> ${fmtMB(row.storedBytes)} MB, peak RSS ${fmtMB(row.peakKb * 1024)} MB ` +
            `(${row.peakDetail}); other processes used ${row.otherCpu.toFixed(2)} CPU-s${row.otherCpu > DISTURBED_CPU_S ? ': disturbed' : ''}`,
        );
        rows.push(row);
      }
      if (!disturbed) cleanRounds++;
    }
  }

  let profileText = '';
  if (values.profile) {
    const dir = await tempDir('prof');
    const keys = sizes[sizes.length - 1]!;
    log(`profiling: one untimed tykdr-s3 run at ${keys.toLocaleString('en')} keys under node --cpu-prof`);
    if (quietWait > 0) await waitQuiet(quietWait);
    const row = await runContender(setup, 'tykdr-s3', keys, 0, [...nodeArgs, '--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('node --cpu-prof wrote no profile');
    if (values['profile-dir'] !== undefined) {
      await mkdir(values['profile-dir'], { recursive: true });
      await copyFile(path.join(dir, file), path.join(values['profile-dir'], file));
      log(`profile kept: ${path.join(values['profile-dir'], file)}`);
    }
    profileText =
      `CPU profile of tykdr's main thread, ${keys.toLocaleString('en')} keys to MinIO (${row.seconds.toFixed(2)} s under the profiler; ` +
      `the zstd worker thread is native and not in this profile):\n${summarizeProfile(JSON.parse(readFileSync(path.join(dir, file), 'utf8')))}`;
  }

  // ------------------------------------------------------------------ report (stdout)
  const out: string[] = [];
  out.push('tykdr backup benchmark: Redis with Tyk-like apikey-* sessions');
  out.push(...machine);
  const argv = process.argv.slice(2).map((a) => (/^[\w,.=\/-]+$/.test(a) ? a : `'${a}'`));
  out.push(`command: npx tsx bench/redis-backup.ts ${argv.join(' ')}`);
  out.push(`rounds: ${runs} undisturbed wanted per size, at most ${maxRuns}; quiet wait up to ${quietWait} s before each run`);
  out.push(`tykdr: ${describeCheckout(tykdrRoot)}${values.label ? ` (${values.label})` : ''}`);
  if (nodeArgs.length > 0) out.push(`tykdr runs as: node ${nodeArgs.join(' ')} bin/run.js ...`);
  out.push('');
  out.push(`baseline:   bash -c 'redis-cli --rdb - | zstd -1 -q | age -r KEY > file'   (writes a local file)`);
  out.push(
    `tykdr-s3:   node bin/run.js backup --json, store kind s3 = MinIO on 127.0.0.1 (same host) over ${values.tls ? 'https' : 'http'}, zstd level 1, one age recipient, ` +
      `partSizeMiB ${partSize ?? '8 (default)'}`,
  );
  if (!values['no-local']) out.push('tykdr-local: the same, store kind local (a folder on the same disk as the baseline file): the apples-to-apples figure');
  out.push('Note: the issue compares tykdr uploading to MinIO over loopback with a baseline that writes a local file; MinIO');
  out.push('runs on the same CPUs, so its CPU time (receiving, hashing, writing) is inside tykdr-s3\'s wall time and not the baseline\'s.');
  out.push('');

  const header = ['keys', 'run', 'contender', 'RDB MB', 'stored MB', 'seconds', 'vs baseline', 'MB/s', 'peak RSS MB', 'CPU s client', 'CPU s redis', 'CPU s minio', 'CPU s other'];
  const body: string[][] = [];
  for (const r of rows) {
    const base = rows.find((b) => b.keys === r.keys && b.run === r.run && b.contender === 'baseline')!;
    body.push([
      r.keys.toLocaleString('en'), String(r.run), r.contender, fmtMB(r.rdbBytes), fmtMB(r.storedBytes), r.seconds.toFixed(2),
      r.contender === 'baseline' ? '1.00x' : `${(r.seconds / base.seconds).toFixed(2)}x`,
      (r.rdbBytes / MB / r.seconds).toFixed(1), fmtMB(r.peakKb * 1024), r.clientCpu.toFixed(2), r.redisCpu.toFixed(2), r.minioCpu.toFixed(2), r.otherCpu.toFixed(2),
    ]);
  }
  out.push('All runs (MB = 10^6 bytes; peak RSS: tykdr = its node process, baseline = redis-cli + zstd + age summed;');
  out.push('CPU s client = user+sys of the command\'s processes; redis includes its fork; minio = CPU used during the run;');
  out.push('CPU s other = the rest of the machine\'s busy time from spawn to 1.5 s after exit: other workloads, the kernel;');
  out.push(`a row with more than ${DISTURBED_CPU_S} there was disturbed, and the summary leaves its run out when it can):`);
  out.push(table(header, body));
  out.push('');

  const sumHeader = [
    'keys', 'runs used', 'RDB MB', 'stored MB', 'baseline s', 'tykdr s', 'ratio', 'tykdr peak RSS MB', 'tykdr MB/s',
    `time <= ${TARGET_RATIO.toFixed(2)}x`, `RSS < ${TARGET_RSS_MB} MB`,
  ];
  const sumBody: string[][] = [];
  const clean = (r: Row) => r.otherCpu <= DISTURBED_CPU_S;
  for (const keys of sizes) {
    for (const c of contenders.filter((x) => x !== 'baseline')) {
      const mine = rows.filter((r) => r.keys === keys && r.contender === c);
      const pairs = mine.map((r) => [rows.find((b) => b.keys === keys && b.run === r.run && b.contender === 'baseline')!, r] as const);
      const cleanPairs = pairs.filter(([b, r]) => clean(b) && clean(r));
      const used = cleanPairs.length > 0 ? cleanPairs : pairs;
      const bs = median(used.map(([b]) => b.seconds));
      const ts = median(used.map(([, r]) => r.seconds));
      const ratio = median(used.map(([b, r]) => r.seconds / b.seconds));
      const rss = Math.max(...mine.map((r) => r.peakKb * 1024)) / MB;
      const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS') + (cleanPairs.length > 0 ? '' : ' (disturbed)');
      sumBody.push([
        `${keys.toLocaleString('en')}${c === 'tykdr-local' ? ' (local)' : ''}`,
        cleanPairs.length > 0 ? `${cleanPairs.length} of ${pairs.length}` : `0 of ${pairs.length}: all`,
        fmtMB(median(mine.map((r) => r.rdbBytes))), fmtMB(median(mine.map((r) => r.storedBytes))),
        bs.toFixed(2), ts.toFixed(2), `${ratio.toFixed(2)}x`, rss.toFixed(1), (median(mine.map((r) => r.rdbBytes)) / MB / ts).toFixed(1),
        verdict(ratio <= TARGET_RATIO), rss < TARGET_RSS_MB ? 'PASS' : 'MISS',
      ]);
    }
  }
  if (values['summary-json']) {
    // For bench/issue-table.ts: per size and tykdr contender, medians over the runs used (see the summary below).
    const summary = sizes.flatMap((keys) =>
      contenders.filter((x) => x !== 'baseline').map((c) => {
        const mine = rows.filter((r) => r.keys === keys && r.contender === c);
        const pairs = mine.map((r) => [rows.find((b) => b.keys === keys && b.run === r.run && b.contender === 'baseline')!, r] as const);
        const cleanPairs = pairs.filter(([b, r]) => clean(b) && clean(r));
        const used = cleanPairs.length > 0 ? cleanPairs : pairs;
        return {
          keys, contender: c, runs: pairs.length, undisturbed: cleanPairs.length,
          baselineS: median(used.map(([b]) => b.seconds)), tykdrS: median(used.map(([, r]) => r.seconds)),
          ratio: median(used.map(([b, r]) => r.seconds / b.seconds)),
          baselineCpu: median(used.map(([b]) => b.clientCpu)), tykdrCpu: median(used.map(([, r]) => r.clientCpu)),
          cpuRatio: median(used.map(([b, r]) => r.clientCpu / b.clientCpu)),
          baselinePeakMB: Math.max(...used.map(([b]) => (b.peakKb * 1024) / MB)), tykdrPeakMB: Math.max(...mine.map((r) => (r.peakKb * 1024) / MB)),
          startupS: median(mine.filter((r) => r.phases).map((r) => r.phases!.startup)),
          otherCpu: Math.max(...used.flatMap(([b, r]) => [b.otherCpu, r.otherCpu])),
        };
      }),
    );
    await writeFile(values['summary-json'], JSON.stringify(summary, null, 1));
  }
  out.push(
    `Summary: tykdr to MinIO as the issue specifies${values['no-local'] ? '' : ', then "(local)" rows to a local folder'}. Times are medians over ` +
      `the runs whose baseline and tykdr rows were both undisturbed (CPU s other <= ${DISTURBED_CPU_S}); ratio = median of per-run ratios; RSS = highest run.`,
  );
  out.push(`Targets: wall time within ${TARGET_RATIO.toFixed(2)}x of the baseline; tykdr peak RSS under ${TARGET_RSS_MB} MB at every size.`);
  out.push(table(sumHeader, sumBody));
  out.push('');
  out.push('Proof the backups were real (manifest facts, then every object decrypted with `age -d -i id | zstd -d` and checked):');
  for (const r of rows) {
    if (r.facts) out.push(`  ${r.keys.toLocaleString('en')} keys, run ${r.run}, ${r.contender}: ${r.facts}`);
    else out.push(`  ${r.keys.toLocaleString('en')} keys, run ${r.run}, baseline: file of ${r.storedBytes} bytes decrypts to ${r.rdbBytes} bytes starting ${JSON.stringify(r.magic)}`);
  }
  out.push('');
  out.push('Peak RSS by process (MB):');
  for (const r of rows) out.push(`  ${r.keys.toLocaleString('en')} keys, run ${r.run}, ${r.contender}: ${r.peakDetail}`);
  out.push('');
  out.push('CPU seconds by process, from /proc every 50 ms (for node: its main thread, its busiest other thread, which is the');
  out.push('zstd worker, and the rest: V8 GC/compiler helpers, libuv pool):');
  for (const r of rows) out.push(`  ${r.keys.toLocaleString('en')} keys, run ${r.run}, ${r.contender}: ${r.cpuDetail}`);
  out.push('');
  out.push('Where tykdr\'s wall time goes (from the manifest\'s timestamps, on the same clock as the bench):');
  out.push('  start-up = spawn to SYNC sent (node, oclif, config, store and Redis checks); transfer = SYNC sent to object');
  out.push('  stored (RDB streamed, checked, compressed, encrypted, uploaded); finish = manifest written, process exit.');
  for (const r of rows) {
    if (!r.phases) continue;
    const p = r.phases;
    out.push(
      `  ${r.keys.toLocaleString('en')} keys, run ${r.run}, ${r.contender}: start-up ${p.startup.toFixed(2)} s, transfer ${p.transfer.toFixed(2)} s, ` +
        `finish ${p.finish.toFixed(2)} s (total ${r.seconds.toFixed(2)} s)`,
    );
  }
  if (profileText) out.push('', profileText);
  process.stdout.write(`${out.join('\n')}\n`);
}

await runMain(main);
