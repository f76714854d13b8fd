import { type ChildProcess, spawn } from 'node:child_process';
import { watchChild } from '../../../core/util/watchdog.js';
import { randomBytes } from 'node:crypto';
import { copyFile, cp, link, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { badInput, TykdrError } from '../../../core/errors.js';
import { parseInfo } from '../protocol/connection.js';
import { RespPipe } from '../protocol/resp-pipe.js';
import { RedisPool } from '../protocol/target-connection.js';
import { freePort } from '../../../core/net.js';

/**
 * A private, throwaway redis-server that loads a staged RDB so its keys can be read one by one. It listens
 * on 127.0.0.1 only, with a random password written to a 0600 config file (never on the command line, where
 * other local users could read it in `ps`), and persists nothing: the staged file is never rewritten.
 */
export interface ScratchServer {
  port: number;
  /** redis_version of the scratch server. */
  version: string;
  /** Connections per database index. */
  pool: RedisPool;
  /** A lean pipeline connection on database `db`, for the bulk copy. */
  openPipe(db: number, signal?: AbortSignal): Promise<RespPipe>;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). Safe to call twice. */
  stop(): Promise<void>;
}

export interface ScratchOptions {
  /** redis-server binary (components.<name>.restore.redisServer). */
  bin: string;
  /** Folder to run in; created. The RDB is hard-linked (or copied) into it when it lives elsewhere. */
  dir: string;
  /** What to load: an RDB file, an AOF folder (copied in: Redis appends to it), or nothing (an empty server). */
  rdbFile?: string;
  /** singleFile: the binary is Redis < 7 (one AOF file): the folder's base file is placed as appendfilename instead. */
  aof?: { folder: string; dirName: string; appendfilename: string; singleFile?: string };
  /** `databases` for the server: at least one more than the highest database index in the snapshot. */
  databases: number;
  loadTimeoutMs: number;
  /** Config path of the restore section, for messages: "components.redis.restore". */
  where: string;
  signal?: AbortSignal;
}

/** Puts the RDB inside `dir` (a hard link when possible: no copy, and the staged file stays where it was). */
async function placeRdb(rdbFile: string, dir: string): Promise<string> {
  const name = 'snapshot.rdb';
  const dest = path.join(dir, name);
  try {
    await link(rdbFile, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw err;
    await copyFile(rdbFile, dest);
  }
  return name;
}

/**
 * Starts a scratch server on the RDB and waits until it has loaded it (PING answers, INFO says loading:0).
 * Contract: resolves only with a loaded server; on any failure (including abort) the process is stopped.
 * A port taken between choosing and binding is retried twice.
 */
export async function startScratch(opts: ScratchOptions): Promise<ScratchServer> {
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  let load: string[];
  if (opts.aof?.singleFile) {
    // Redis < 7: one file, no appenddirname. A copy: Redis appends to it.
    await copyFile(path.join(opts.aof.folder, opts.aof.singleFile), path.join(opts.dir, opts.aof.appendfilename));
    load = [
      '--appendonly', 'yes', '--appendfilename', opts.aof.appendfilename,
      '--auto-aof-rewrite-percentage', '0', '--appendfsync', 'no', '--aof-load-truncated', 'yes', '--dbfilename', 'none.rdb',
    ];
  } else if (opts.aof) {
    // A copy, never the staged folder: the scratch server appends to its AOF (expiries become DELs).
    await cp(opts.aof.folder, path.join(opts.dir, opts.aof.dirName), { recursive: true });
    load = [
      '--appendonly', 'yes', '--appenddirname', opts.aof.dirName, '--appendfilename', opts.aof.appendfilename,
      '--auto-aof-rewrite-percentage', '0', '--appendfsync', 'no', '--aof-load-truncated', 'yes', '--dbfilename', 'none.rdb',
    ];
  } else if (opts.rdbFile) {
    load = ['--appendonly', 'no', '--dbfilename', await placeRdb(opts.rdbFile, opts.dir)];
  } else {
    load = ['--appendonly', 'no', '--dbfilename', 'none.rdb'];
  }
  const password = randomBytes(24).toString('hex');
  const conf = path.join(opts.dir, 'scratch.conf');
  await writeFile(conf, `requirepass ${password}\n`, { mode: 0o600 });
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts, conf, load, password);
    } catch (err) {
      lastErr = err;
      if (!(err instanceof PortInUse)) throw err;
    }
  }
  throw lastErr;
}

class PortInUse extends Error {}

async function startOnce(opts: ScratchOptions, conf: string, load: string[], password: string): Promise<ScratchServer> {
  const port = await freePort();
  const log = path.join(opts.dir, 'scratch-redis.log');
  const args = [
    conf, '--port', String(port), '--bind', '127.0.0.1', '--dir', opts.dir, ...load,
    '--save', '', '--daemonize', 'no', '--logfile', log,
    '--databases', String(Math.max(16, opts.databases)), '--protected-mode', 'yes',
  ];
  const child: ChildProcess = spawn(opts.bin, args, { cwd: opts.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  // Dies with tykdr, even through kill -9.
  watchChild(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  // A spawn error (ENOENT) ends the wait below at its next 50 ms tick; one listener, not one per tick.
  let spawnError: Error | null = null;
  let wake: (() => void) | null = null;
  child.once('error', (err) => {
    spawnError = err;
    wake?.();
  });
  const tick = () =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => ((wake = null), resolve()), 50);
      wake = () => (clearTimeout(t), (wake = null), resolve());
    });
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  };
  const pool = new RedisPool(async (db) => {
    const r = new Redis({
      host: '127.0.0.1', port, password, db, lazyConnect: true, maxRetriesPerRequest: 0,
      enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 10_000,
      // No ready check: it would wait inside connect() while the RDB loads, past our deadline and signal.
      enableReadyCheck: false,
    });
    r.on('error', () => undefined);
    await r.connect();
    return r;
  });
  const stop = async () => {
    pool.close();
    await kill();
  };

  try {
    const deadline = Date.now() + opts.loadTimeoutMs;
    let exitCode: number | null | undefined;
    exited.then((c) => (exitCode = c), () => undefined);
    for (;;) {
      opts.signal?.throwIfAborted();
      if (exitCode !== undefined) await failure(opts, log, stderr, exitCode);
      try {
        const c = await pool.db(0);
        // parseInfo, not a regex: Redis 7 also reports async_loading:0 while loading.
        if (parseInfo(String(await c.info('persistence'))).loading === '0') {
          const version = /redis_version:(\S+)/.exec(String(await c.info('server')))?.[1] ?? 'unknown';
          const openPipe = (db: number, signal?: AbortSignal) =>
            RespPipe.open({ host: '127.0.0.1', port, password, db, connectTimeoutMs: 10_000, signal });
          return { port, version, pool, openPipe, stop };
        }
      } catch (err) {
        pool.close();
        if (!/LOADING|ECONNREFUSED|Connection is closed/i.test(String((err as Error).message))) throw err;
      }
      if (Date.now() > deadline) {
        throw new TykdrError('targetError', `the scratch redis-server did not finish loading the snapshot within ${opts.where}.loadTimeout`, {
          fix: `raise ${opts.where}.loadTimeout (a large RDB can take minutes to load)`,
        });
      }
      await tick();
      if (spawnError) throw spawnError;
    }
  } catch (err) {
    await stop();
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw badInput(`${opts.where}.redisServer "${opts.bin}" was not found`, `install redis-server or set ${opts.where}.redisServer to its path`, err);
    }
    throw err;
  }
}

async function failure(opts: ScratchOptions, log: string, stderr: string, code: number | null): Promise<never> {
  const text = `${stderr}\n${await readFile(log, 'utf8').catch(() => '')}`;
  if (/Address already in use/i.test(text)) throw new PortInUse('port in use');
  const tail = text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-4).join(' | ');
  if (/RDB format version|Can't handle RDB|Unrecognized RDB/i.test(text)) {
    throw badInput(
      `${opts.where}.redisServer "${opts.bin}" cannot load this snapshot's RDB version (${tail})`,
      `set ${opts.where}.redisServer to a redis-server at least as new as the one that wrote the snapshot`,
    );
  }
  throw new TykdrError('targetError', `the scratch redis-server exited with code ${code} while loading the snapshot: ${tail}`, {
    fix: `read ${log} (kept until the restore ends) and check that the staged ${opts.aof ? 'AOF folder' : 'RDB'} is intact`,
  });
}
