/**
 * Helpers shared by bench/redis-restore.ts and bench/redis-keys.ts: cleanup of everything a benchmark starts,
 * free ports and temp folders, redis-server start/fill, a tiny RESP client (INFO polling without spawning
 * redis-cli), the "wait until the machine is quiet" step, and `measured()`: one command timed from spawn to exit
 * with the peak RSS (VmHWM) of its processes polled every 50 ms.
 *
 * bench/redis-backup.ts and bench/postgres-backup.ts import the generic ones too (cleanup, /proc readings, ports,
 * version, median, table, runMain); they keep their own measured() and waitQuiet(), which differ on purpose.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { connect, createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sessionsResp } from './tyk-sessions.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MB = 1e6; // decimal megabytes throughout
export const POLL_MS = 50;

// ---------------------------------------------------------------------------------------------------------
// Cleanup: children (optionally as process groups), daemons by pid file, temp folders. Ctrl-C, SIGTERM,
// errors and normal exit remove them.

const children = new Set<ChildProcess>();
const groups = new Set<number>();
const pidFiles = new Set<string>();
const tempDirs = new Set<string>();
let cleaning: Promise<void> | null = null;

export function track(child: ChildProcess, group = false): ChildProcess {
  children.add(child);
  if (group && child.pid !== undefined) groups.add(child.pid);
  child.once('exit', () => {
    children.delete(child);
    if (child.pid !== undefined) groups.delete(child.pid);
  });
  return child;
}

/** A daemon (e.g. `redis-server --daemonize yes --pidfile F`) this benchmark started: killed at cleanup by its pid file. */
export function trackPidFile(file: string): void {
  pidFiles.add(file);
}

function pidOf(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

function signalAll(sig: NodeJS.Signals): void {
  for (const pid of groups) {
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(sig);
  for (const f of pidFiles) {
    const pid = pidOf(f);
    if (pid === null) continue;
    try {
      // Only a redis-server we started: the pid file may be stale and the pid reused.
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('redis')) process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

function daemonsAlive(): boolean {
  for (const f of pidFiles) {
    const pid = pidOf(f);
    if (pid !== null && existsSync(`/proc/${pid}`)) {
      try {
        if (!readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')) return true;
      } catch {
        // gone
      }
    }
  }
  return false;
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    signalAll('SIGTERM');
    const deadline = Date.now() + 8000;
    while ((children.size > 0 || daemonsAlive()) && Date.now() < deadline) await sleep(100);
    signalAll('SIGKILL');
    for (const d of tempDirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    tempDirs.clear();
  })();
  return cleaning;
}

/**
 * A TCP proxy on 127.0.0.1 that holds every chunk `oneWayMs` before passing it on, both ways: a store that far away
 * (a round trip of twice that). Order is kept (equal delays fire in order); a close passes on after the same delay.
 * For the benchmarks' S3 rows at a distance (`--store-delay`), not a network model: no bandwidth limit, no loss.
 */
export async function delayProxy(upstream: { host: string; port: number }, oneWayMs: number): Promise<{ port: number; close(): void }> {
  const server = createServer((client) => {
    const up = connect(upstream.port, upstream.host);
    // No Nagle in the proxy: a small reply held for the ACK of the one before would add up to 40 ms (delayed ACK) that
    // no real path between a client and a server that both set TCP_NODELAY has.
    client.setNoDelay(true);
    up.setNoDelay(true);
    const later = (to: typeof client) => (d: Buffer) => void setTimeout(() => to.write(d), oneWayMs);
    client.on('data', later(up));
    up.on('data', later(client));
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => void setTimeout(() => up.destroy(), oneWayMs));
    up.on('close', () => void setTimeout(() => client.destroy(), oneWayMs));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref(); // never what keeps a benchmark from ending
  return { port: (server.address() as { port: number }).port, close: () => void server.close() };
}

/**
 * A TCP proxy on 127.0.0.1 that passes each connection's bytes, each way, at no more than `bytesPerSecond`: a store
 * that serves every connection at a limited rate, as S3 does (its performance guidance: use byte-range fetches on
 * several connections for more). Each chunk leaves once the connection's link would have carried it; the sender is
 * paused while more than 1 MiB waits. Not a network model beyond that: no delay, no loss, no limit on the sum.
 */
export async function rateProxy(upstream: { host: string; port: number }, bytesPerSecond: number): Promise<{ port: number; connections(): number; close(): void }> {
  let connections = 0;
  const HIGH = 1024 * 1024;
  const paced = (from: Socket, to: Socket) => {
    let free = performance.now(); // when this direction's link is next free
    const queue: Array<{ at: number; d: Buffer }> = []; // in order: one timer for the head, so nothing overtakes
    let head = 0;
    let queued = 0;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const pump = () => {
      timer = undefined;
      const now = performance.now();
      while (head < queue.length && queue[head]!.at <= now) {
        const { d } = queue[head++]!;
        to.write(d);
        queued -= d.length;
      }
      if (head === queue.length) {
        queue.length = 0;
        head = 0;
      }
      if (queued <= HIGH && from.isPaused()) from.resume();
      if (head < queue.length) timer = setTimeout(pump, Math.max(0, queue[head]!.at - now));
      else if (ended) to.end();
    };
    from.on('data', (d: Buffer) => {
      free = Math.max(performance.now(), free) + (d.length / bytesPerSecond) * 1000;
      queue.push({ at: free, d });
      queued += d.length;
      if (queued > HIGH) from.pause();
      timer ??= setTimeout(pump, Math.max(0, queue[head]!.at - performance.now()));
    });
    from.on('end', () => {
      ended = true;
      if (timer === undefined) to.end();
    });
    to.on('close', () => clearTimeout(timer));
  };
  const server = createServer((client) => {
    connections++;
    const up = connect(upstream.port, upstream.host);
    paced(client, up);
    paced(up, client);
    // A clean close is passed on by 'end' once what was queued has gone (an error answer then a close reaches the
    // client whole); an error closes the other side at once.
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', (hadError) => hadError && up.destroy());
    up.on('close', (hadError) => hadError && client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return { port: (server.address() as { port: number }).port, connections: () => connections, close: () => void server.close() };
}

/** Installs the Ctrl-C / SIGTERM / exit handlers; call once from a benchmark's top level. */
export function installCleanup(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n[bench] ${sig}: stopping servers and removing temp folders\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  // Last resort (uncaught errors, process.exit elsewhere): synchronous kill and removal.
  process.on('exit', () => {
    signalAll('SIGKILL');
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
export const fmtMB = (bytes: number, digits = 1) => (bytes / MB).toFixed(digits);
export const fmtInt = (n: number) => Math.round(n).toLocaleString('en');

export async function tempDir(tag: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), `tykdr-bench-${tag}-`));
  tempDirs.add(d);
  return d;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (tracked for cleanup). */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
  });
}

export async function must(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.code}: ${(res.stderr || res.stdout).trim().slice(-3000)}`);
  return res.stdout.trim();
}

/** The first capture of `re` in the command's output, or (no match, or no `re`) its first line; 'not found' when it fails. */
export function version(cmd: string, args: string[], re?: RegExp): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return re?.exec(out)?.[1] ?? out.trim().split('\n')[0]!;
  } catch {
    return 'not found';
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** The machine and tool versions, one line each. */
export function machineLines(): string[] {
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const osName = /PRETTY_NAME="([^"]+)"/.exec(existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '')?.[1] ?? 'Linux';
  return [
    `machine: ${os.availableParallelism()} CPUs (nproc), ${cpuModel}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${osName}, Linux ${os.release()}`,
    `node ${process.version}; redis-server ${version('redis-server', ['--version'], /v=(\S+)/)}; zstd ${version('zstd', ['-V'], /(v[\d.]+)/)}; ` +
      `age ${version('age', ['--version'], /(\S+)/)}; tykdr ${JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version}`,
  ];
}

/** Which tykdr is timed: its folder and git commit (read-only git commands). */
export function describeCheckout(root: string): string {
  try {
    const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'bin', 'package.json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return `${root} at commit ${commit}${dirty ? ', with uncommitted changes in src/ (dist/ is whatever was last built)' : ''}; ${cliLayout(root)}`;
  } catch {
    return `${root} (not a git checkout); ${cliLayout(root)}`;
  }
}

/** Which code bin/run.js runs there: the bundle (npm run build) while it is newer than dist/commands, else dist/'s modules. */
export function cliLayout(root: string): string {
  const newest = (dir: string): number => {
    let n = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      n = Math.max(n, e.isDirectory() ? newest(p) : e.name.endsWith('.js') ? statSync(p).mtimeMs : 0);
    }
    return n;
  };
  const stamp = path.join(root, 'dist/bundle/STAMP');
  if (process.env.TYKDR_NO_BUNDLE === '1') return 'CLI from dist/ modules (TYKDR_NO_BUNDLE=1)';
  if (!existsSync(stamp)) return 'CLI from dist/ modules (no bundle: npm run build makes one)';
  return statSync(stamp).mtimeMs >= newest(path.join(root, 'dist/commands'))
    ? 'CLI bundled (dist/bundle)'
    : 'CLI from dist/ modules (the bundle is older than dist/: npm run build)';
}

/**
 * A benchmark's top level: runs `main`, reports a failure on stderr with exit code 1, and always cleans up
 * (`finish`, by default this module's cleanup()).
 */
export async function runMain(main: () => Promise<void>, finish: () => void | Promise<void> = cleanup): Promise<void> {
  try {
    await main();
  } catch (err) {
    process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await finish();
  }
}

// ---------------------------------------------------------------------------------------------------------
// /proc readings

/** VmHWM (peak resident set) of a live process in kB, or null when it is gone or a zombie. */
export function vmHwmKb(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export const CLK_TCK = Number(version('getconf', ['CLK_TCK'], /(\d+)/)) || 100;

/**
 * CPU seconds of a process: own user+system, plus reaped children's. Zero when it is gone, or with
 * `{ strict: true }` the error of reading /proc (for a server that must still be running).
 */
export function cpuSeconds(pid: number, opts: { strict?: boolean } = {}): { self: number; children: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm)": state(3) ... utime(14) stime(15) cutime(16) cstime(17), numbered as in proc(5)
    const n = (i: number) => Number(f[i - 3]);
    return { self: (n(14) + n(15)) / CLK_TCK, children: (n(16) + n(17)) / CLK_TCK };
  } catch (err) {
    if (opts.strict) throw err;
    return { self: 0, children: 0 };
  }
}

/** Busy CPU seconds of the whole machine so far (all CPUs; /proc/stat minus idle and iowait). */
export function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3]! - f[4]!) / CLK_TCK;
}

/** Direct children of a process (of all its threads). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // thread gone
    }
  }
  return out;
}

/** Every descendant with its parent's pid. */
export function descendants(pid: number): Array<{ pid: number; parent: number }> {
  const out: Array<{ pid: number; parent: number }> = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const c of childPids(p)) {
      out.push({ pid: c, parent: p });
      queue.push(c);
    }
  }
  return out;
}

/**
 * Waits (up to maxWaitS) until the machine has been quiet for two to five consecutive seconds (two, as
 * bench/redis-backup.ts, plus a random 0-3): busy CPU under a quarter of one CPU, not counting this benchmark. Resolves with whether it got quiet and
 * how long it waited.
 */
export async function waitQuiet(maxWaitS: number): Promise<{ quiet: boolean; waitedS: number; busy: number }> {
  const t0 = Date.now();
  if (maxWaitS <= 0) return { quiet: false, waitedS: 0, busy: NaN };
  const deadline = t0 + maxWaitS * 1000;
  let quiet = 0;
  let said = false;
  let busy = 0;
  // Two quiet seconds, plus 0 to 3 more at random: another benchmark waiting the same way would otherwise see the
  // same quiet seconds and start at the same moment; the extra seconds let this one see the other start first.
  const need = 2 + Math.floor(Math.random() * 4);
  while (quiet < need) {
    const b0 = machineBusySeconds();
    const c0 = process.cpuUsage();
    await sleep(1000);
    const c = process.cpuUsage(c0);
    busy = machineBusySeconds() - b0 - (c.user + c.system) / 1e6;
    quiet = busy < 0.25 ? quiet + 1 : 0;
    if (quiet === 0 && Date.now() > deadline) {
      log(`  the machine is still busy after ${maxWaitS} s (${busy.toFixed(2)} CPU-s/s used by other processes); measuring anyway`);
      return { quiet: false, waitedS: (Date.now() - t0) / 1000, busy };
    }
    if (quiet === 0 && !said) {
      log(`  waiting for other processes to go quiet (${busy.toFixed(2)} CPU-s/s busy), up to ${maxWaitS} s`);
      said = true;
    }
  }
  const waitedS = (Date.now() - t0) / 1000;
  if (waitedS > 5) log(`  quiet after ${waitedS.toFixed(0)} s`);
  return { quiet: true, waitedS, busy };
}

// ---------------------------------------------------------------------------------------------------------
// A minimal RESP client: one command per connection. Enough for INFO polling and DBSIZE without spawning
// redis-cli (whose start-up would blur a 10 ms poll).

export type Reply = { kind: 'ok' | 'error' | 'int' | 'bulk'; value: string };

export function redisCall(port: number, args: string[], timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no reply from 127.0.0.1:${port} to ${args[0]} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (r: Reply | Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    sock.on('error', (err) => done(err));
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(1, eol).toString('latin1');
      switch (buf[0]) {
        case 0x2b: // +
          return done({ kind: 'ok', value: head });
        case 0x2d: // -
          return done({ kind: 'error', value: head });
        case 0x3a: // :
          return done({ kind: 'int', value: head });
        case 0x24: {
          // $
          const len = Number(head);
          if (len < 0) return done({ kind: 'bulk', value: '' });
          if (buf.length < eol + 2 + len + 2) return;
          return done({ kind: 'bulk', value: buf.subarray(eol + 2, eol + 2 + len).toString('utf8') });
        }
        default:
          return done(new Error(`unexpected reply ${JSON.stringify(buf.subarray(0, 40).toString('latin1'))}`));
      }
    });
  });
}

/** INFO text as a map; keys are whole field names, so `async_loading` never passes for `loading`. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** 'down' (refused), 'loading' (LOADING error or INFO loading:1), 'up' (INFO persistence says loading:0). */
export async function loadState(port: number): Promise<'down' | 'loading' | 'up'> {
  let r: Reply;
  try {
    r = await redisCall(port, ['INFO', 'persistence'], 2000);
  } catch {
    return 'down';
  }
  if (r.kind === 'error') return /^LOADING/.test(r.value) ? 'loading' : 'down';
  return parseInfo(r.value).loading === '0' ? 'up' : 'loading';
}

export async function dbsize(port: number): Promise<number> {
  const r = await redisCall(port, ['DBSIZE'], 30_000);
  if (r.kind !== 'int') throw new Error(`DBSIZE on port ${port}: ${r.kind} ${r.value}`);
  return Number(r.value);
}

// ---------------------------------------------------------------------------------------------------------
// Servers

export interface Redis {
  port: number;
  pid: number;
  dir: string;
  child: ChildProcess;
  cli(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Common arguments of every redis-server the benchmarks start: no persistence of their own, loopback only. */
export const REDIS_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];

/** A foreground redis-server on a free port in `dir` (a new temp folder when omitted). */
export async function startRedis(opts: { dir?: string; extra?: string[]; waitLoaded?: boolean } = {}): Promise<Redis> {
  const dir = opts.dir ?? (await tempDir('redis'));
  const port = await freePort();
  const child = track(
    spawn('redis-server', ['--port', String(port), ...REDIS_ARGS, '--dir', dir, '--daemonize', 'no', '--logfile', path.join(dir, 'redis.log'), ...(opts.extra ?? [])], {
      stdio: 'ignore',
    }),
  );
  const cli = (...args: string[]) => must('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode}: ${await readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => '')}`);
    if ((await loadState(port)) === 'up') break;
    if (Date.now() > deadline) throw new Error('redis-server did not come up within 600 s');
    await sleep(20);
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await redisCall(port, ['SHUTDOWN', 'NOSAVE']).catch(() => undefined);
    const t = Date.now();
    while (child.exitCode === null && child.signalCode === null && Date.now() - t < 10_000) await sleep(20);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return { port, pid: child.pid!, dir, child, cli, stop };
}

/** Sends keys [from, to) of bench/tyk-sessions.ts through `redis-cli --pipe`. */
export async function fillRedis(port: number, from: number, to: number): Promise<void> {
  const child = track(spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((r) => child.once('close', r));
  const stdin = child.stdin!;
  let broken = false;
  stdin.on('error', () => (broken = true));
  for (const chunk of sessionsResp(from, to)) {
    if (broken || child.exitCode !== null) break;
    if (!stdin.write(chunk)) await Promise.race([new Promise((r) => stdin.once('drain', r)), closed]);
  }
  stdin.end();
  const code = await closed;
  const m = /errors: (\d+), replies: (\d+)/.exec(out);
  if (code !== 0 || !m || m[1] !== '0' || Number(m[2]) !== to - from) {
    throw new Error(`redis-cli --pipe failed (exit ${code}): ${out.trim().slice(-500)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// One measured command: `bash -c SCRIPT`, timed from spawn to exit. Peak RSS is the VmHWM of every descendant
// of bash (node and its scratch redis-server for tykdr; age, zstd for a pipeline), polled every 50 ms; VmHWM
// never decreases, so the last reading is the peak (up to the last 50 ms of a process's life). CPU of the
// command is exact: bash's `times` after its children were reaped (a child's reaped children included).

export interface Measured extends RunResult {
  seconds: number;
  spawnedAt: number;
  exitedAt: number;
  /** pid -> comm, peak kB, depth (1 = bash's child, 2 = grandchild, ...) */
  peaks: Map<number, { comm: string; kb: number; depth: number }>;
  cpuUser: number;
  cpuSys: number;
}

export async function measured(script: string, opts: { env?: NodeJS.ProcessEnv; timesFile: string; cwd?: string }): Promise<Measured> {
  const full = `set -o pipefail\n${script}\nrc=$?\ntimes > '${opts.timesFile}'\nexit $rc`;
  const peaks = new Map<number, { comm: string; kb: number; depth: number }>();
  const spawnedAt = Date.now();
  const t0 = performance.now();
  const child = track(spawn('bash', ['-c', full], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd ?? repoRoot, detached: true }), true);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const poll = () => {
    const depth = new Map<number, number>([[child.pid!, 0]]);
    for (const { pid, parent } of descendants(child.pid!)) {
      const dpt = (depth.get(parent) ?? 0) + 1;
      depth.set(pid, dpt);
      const kb = vmHwmKb(pid);
      if (kb === null) continue;
      let comm: string;
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); // read every time: "bash" between fork and exec
      } catch {
        continue;
      }
      peaks.set(pid, { comm, kb: Math.max(kb, peaks.get(pid)?.kb ?? 0), depth: dpt });
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
  const times = await readFile(opts.timesFile, 'utf8').catch(() => '');
  const lines = times.trim().split('\n');
  const secs = (s: string | undefined) => {
    const m = /(\d+)m([\d.]+)s/.exec(s ?? '');
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  };
  const [cu, cs] = (lines[1] ?? '').split(/\s+/);
  return { code, stdout, stderr, seconds, spawnedAt, exitedAt, peaks, cpuUser: secs(cu), cpuSys: secs(cs) };
}

/** Peak kB of the first process named `comm` at `depth` (e.g. node at depth 1), 0 when none was seen. */
export function peakOf(m: Measured, comm: string, depth?: number): number {
  let kb = 0;
  for (const p of m.peaks.values()) if (p.comm === comm && (depth === undefined || p.depth === depth)) kb = Math.max(kb, p.kb);
  return kb;
}

/** "node 180.2 + redis-server 1210.0" */
export function peakDetail(m: Measured): string {
  return [...m.peaks.values()]
    .filter((p) => p.comm !== 'bash')
    .map((p) => `${p.comm}${p.depth > 1 ? ` (depth ${p.depth})` : ''} ${fmtMB(p.kb * 1024)}`)
    .join(' + ');
}

/** Busy CPU of everything else on the machine during a window: start with `otherCpuStart()`, finish with the known CPU. */
export function otherCpuStart(): () => { busy: number; bench: number } {
  const b0 = machineBusySeconds();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { busy: machineBusySeconds() - b0, bench: (c.user + c.system) / 1e6 };
  };
}

// ---------------------------------------------------------------------------------------------------------
// MinIO (bench/redis-backup.ts, bench/s3-put.ts)

export const MINIO = path.join(repoRoot, '.tools/bin/minio');
export const MINIO_KEY = 'tykdr-bench';
export const MINIO_SECRET = 'tykdr-bench-secret-0123456789';

/**
 * MinIO on 127.0.0.1, in a temp folder (credentials MINIO_KEY / MINIO_SECRET); with `tls`, over https with a
 * throwaway CA whose certificate is `ca` (a process trusts it through NODE_EXTRA_CA_CERTS). Stopped at cleanup.
 */
export async function startMinioServer(tls: boolean): Promise<{ endpoint: string; pid: number; ca?: string }> {
  if (!existsSync(MINIO)) throw new Error(`MinIO is not built at ${MINIO}: run bash scripts/tools.sh`);
  const dir = await tempDir('minio');
  const port = await freePort();
  const certs = path.join(dir, 'certs');
  if (tls) await makeCerts(certs);
  const child = track(
    spawn(MINIO, ['server', path.join(dir, 'data'), '--address', `127.0.0.1:${port}`, '--quiet', ...(tls ? ['--certs-dir', certs] : [])], {
      env: { ...process.env, MINIO_ROOT_USER: MINIO_KEY, MINIO_ROOT_PASSWORD: MINIO_SECRET, MINIO_BROWSER: 'off', MINIO_CI_CD: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const ca = tls ? readFileSync(path.join(certs, 'CAs', 'ca.pem'), 'utf8') : undefined;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`MinIO exited ${child.exitCode}: ${stderr}`);
    if ((await healthStatus(`${endpoint}/minio/health/live`, ca)) === 200) break;
    if (Date.now() > deadline) throw new Error(`MinIO did not become ready on ${endpoint}: ${stderr}`);
    await sleep(200);
  }
  return { endpoint, pid: child.pid!, ...(tls ? { ca: path.join(certs, 'CAs', 'ca.pem') } : {}) };
}

function healthStatus(url: string, ca: string | undefined): Promise<number> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https') ? https : http).get(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

/** A CA and a certificate for 127.0.0.1 where MinIO's --certs-dir wants them (public.crt, private.key, CAs/). */
async function makeCerts(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'CAs'), { recursive: true });
  const f = (n: string) => path.join(dir, n);
  await must('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=tykdr bench CA', '-keyout', f('ca.key'), '-out', f('CAs/ca.pem')]);
  await must('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('private.key'), '-out', f('server.csr')]);
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await must('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('CAs/ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('public.crt')]);
}

// ---------------------------------------------------------------------------------------------------------
// Benchmarks of one code path in several checkouts (bench/redis-bytes-path.ts, bench/restore-stage.ts)

/**
 * Their common start: --keys, --runs and --root (repeatable; default this checkout) parsed, and the `extra` options
 * (in `options`); a temp folder holding the child script (`child`) and an age identity; a redis-server (diskless
 * sync without delay) holding `keys` of the Tyk-like sessions.
 */
export async function checkoutsBench(tag: string, child: string, defaults: { keys: number; runs: number }, extra: Record<string, { type: 'string'; default?: string }> = {}) {
  const { values } = parseArgs({
    options: { keys: { type: 'string', default: String(defaults.keys) }, runs: { type: 'string', default: String(defaults.runs) }, root: { type: 'string', multiple: true }, ...extra },
  });
  const keys = Number(values.keys);
  const runs = Number(values.runs);
  if (!Number.isInteger(keys) || keys < 1 || !Number.isInteger(runs) || runs < 1) throw new Error(`bad --keys/--runs: ${values.keys} / ${values.runs}`);
  const roots = (values.root ?? [repoRoot]).map((r) => path.resolve(r));
  const work = await tempDir(tag);
  const script = path.join(work, 'child.mjs');
  await writeFile(script, child);
  const identity = path.join(work, 'id');
  await must('age-keygen', ['-o', identity]);
  const recipient = /age1[0-9a-z]+/.exec(await must('age-keygen', ['-y', identity]))![0];
  const redis = await startRedis({ extra: ['--repl-diskless-sync-delay', '0'] });
  log(`filling Redis with ${keys.toLocaleString('en')} keys`);
  await fillRedis(redis.port, 0, keys);
  return { keys, runs, roots, work, script, identity, recipient, redis, options: values as unknown as Record<string, string | undefined> };
}
