import type { Redis } from 'ioredis';
import type { RedisComponent } from '../../../core/config/load.js';
import { TykdrError } from '../../../core/errors.js';
import { connectRedis, connectTimeoutMs, explainRedisError, parseInfo, stallTimeoutMs, tlsOptions, type RedisAddress } from './connection.js';
import { resolveAddress } from './sentinel.js';
import { CommandEncoder, RespPipe } from './resp-pipe.js';

/**
 * Where a restore writes: `components.<name>.restore.target` field by field over the component's own
 * host/port/credentials/TLS, or, for a Sentinel component without a target host, the current master
 * (never a replica: a restore always goes to the master).
 */
export interface RestoreTarget {
  /**
   * The component with the target's address and credentials laid over it. Its `name` is the config path
   * messages should point at ("redis" or "redis.restore.target"), so a refused password names the right key.
   */
  conn: RedisComponent;
  address: RedisAddress;
  /** "host:port", for messages and reports. */
  display: string;
}

export async function resolveRestoreTarget(c: RedisComponent, signal?: AbortSignal): Promise<RestoreTarget> {
  const t = c.restore.target;
  const hostOverride = t?.host !== undefined || t?.port !== undefined;
  const credOverride = t !== undefined && (t.username !== undefined || t.password !== undefined || t.tls !== undefined);
  const conn: RedisComponent = {
    ...c,
    name: hostOverride || credOverride ? `${c.name}.restore.target` : c.name,
    host: t?.host ?? c.host,
    port: t?.port ?? c.port,
    username: t?.username ?? c.username,
    password: t?.password ?? c.password,
    tls: t?.tls ?? c.tls,
    db: 0,
  };
  let address: RedisAddress;
  if (c.sentinel && !hostOverride) {
    try {
      address = await resolveAddress({ ...c, sentinel: { ...c.sentinel, fromReplica: false } }, signal);
    } catch (err) {
      throw asTargetError(err);
    }
  } else {
    address = { host: conn.host, port: conn.port, via: 'config' };
  }
  return { conn, address, display: `${address.host}:${address.port}` };
}

/** Re-labels a connection error (which the shared helpers classify as a source problem) as a target problem. */
export function asTargetError(err: unknown): Error {
  if (err instanceof TykdrError) {
    if (err.kind !== 'sourceUnreachable') return err;
    return new TykdrError('targetError', err.message, { fix: err.fix, cause: err.cause });
  }
  return err as Error;
}

/** Connects to the restore target (database 0); failures are targetErrors naming the user, never the password. */
export async function connectTarget(target: RestoreTarget, db = 0, signal?: AbortSignal): Promise<Redis> {
  signal?.throwIfAborted();
  try {
    const client = await connectRedis({ ...target.conn, db }, target.address);
    client.on('error', () => undefined);
    return client;
  } catch (err) {
    throw asTargetError(err);
  }
}

/** A lean pipeline connection to the target on database `db` (for the bulk copy); errors as connectTarget's. */
export async function openTargetPipe(target: RestoreTarget, db: number, signal?: AbortSignal): Promise<RespPipe> {
  try {
    return await RespPipe.open({
      host: target.address.host,
      port: target.address.port,
      username: target.conn.username,
      password: target.conn.password?.reveal(),
      tls: tlsOptions(target.conn),
      db,
      connectTimeoutMs: connectTimeoutMs(target.conn),
      idleTimeoutMs: stallTimeoutMs(target.conn),
      signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw asTargetError(explainRedisError(err, target.conn, target.address));
  }
}

/**
 * One look at a target that is being stopped or started: 'down' (nothing answers), 'loading' (answers but
 * is still loading its data) or 'up'. Other failures (a refused password, a TLS error) are thrown as targetErrors.
 */
export async function probeTarget(target: RestoreTarget, signal?: AbortSignal): Promise<'down' | 'loading' | 'up'> {
  let pipe: RespPipe;
  try {
    pipe = await openTargetPipe(target, 0, signal);
  } catch (err) {
    const text = `${(err as Error).message} ${String((err as { cause?: Error }).cause?.message ?? '')}`;
    if (/LOADING/.test(text)) return 'loading';
    if (/ECONNREFUSED|ECONNRESET|EPIPE|Connection is closed|is unreachable|ETIMEDOUT/i.test(text)) return 'down';
    throw err;
  }
  try {
    const enc = new CommandEncoder();
    enc.command('INFO', 'persistence');
    const [info] = await pipe.exec(enc.take());
    // parseInfo, not a regex: Redis 7 also reports async_loading:0 while loading.
    return Buffer.isBuffer(info) && parseInfo(info.toString('latin1')).loading === '0' ? 'up' : 'loading';
  } catch {
    return 'down';
  } finally {
    pipe.close();
  }
}

/** Maps a command failure on the target to a targetError naming the target (NOPERM gets the restore's ACL needs). */
export function explainTargetError(err: unknown, target: RestoreTarget, doing: string): Error {
  if (err instanceof TykdrError) return err;
  const msg = String((err as Error)?.message ?? err).split('\n')[0]!;
  const at = `components.${target.conn.name}: Redis at ${target.display}`;
  if (/NOPERM/i.test(msg)) {
    return new TykdrError(
      'targetError',
      `${at}: user "${target.conn.username ?? 'default'}" may not ${doing} (${msg})`,
      { fix: 'grant the ACL user ~* +@connection +info +select +restore +@read (and +config|get for rdb-file mode), or restore as an admin user', cause: err },
    );
  }
  if (/payload version/i.test(msg)) {
    return new TykdrError('targetError', `${at} refused a DUMP payload while trying to ${doing} (${msg}): it is older than the scratch redis-server`, {
      fix: `set components.${target.conn.name.replace(/\.restore\.target$/, '')}.restore.redisServer to a redis-server of the same release as the target`, cause: err,
    });
  }
  if ((err as { code?: string })?.code === 'ESTALL') {
    const setting = `components.${target.conn.name.replace(/\.restore\.target$/, '')}.stallTimeout`;
    return new TykdrError('targetError', `${at} stalled while trying to ${doing}: ${msg} (${setting} is ${target.conn.stallTimeout ?? '60s'}); keys written so far stay`, {
      fix: `check the network path to ${target.display} and that Redis answers (a blocked or overloaded server); on a slow link raise ${setting}; then run the restore again (RESTORE REPLACE makes that safe)`,
      cause: err,
    });
  }
  if (/^OOM/.test(msg)) {
    return new TykdrError('targetError', `${at} ran out of memory (maxmemory) while trying to ${doing}; keys copied so far stay`, {
      fix: 'raise maxmemory on the target (or restore fewer classes), then run the restore again: RESTORE REPLACE makes that safe', cause: err,
    });
  }
  if (/^(SET and )?RESTORE keys/.test(doing) && /ECONNRESET|EPIPE|Connection is closed/i.test(msg)) {
    return new TykdrError('targetError', `${at}: the connection broke (${/EPIPE/.test(msg) ? 'EPIPE' : /ECONNRESET/.test(msg) ? 'ECONNRESET' : 'closed by the other end'}) while trying to ${doing}; keys written so far stay`, {
      fix: `check the network path to ${target.display} and the Redis log (client-output-buffer-limit, timeout, a restart); then run the restore again (RESTORE REPLACE makes that safe)`,
      cause: err,
    });
  }
  if (/ECONNREFUSED|ECONNRESET|Connection is closed|ETIMEDOUT|WRONGPASS|NOAUTH|^Command timed out/i.test(msg)) {
    return asTargetError(explainRedisError(err, target.conn, target.address));
  }
  return new TykdrError('targetError', `${at} failed to ${doing}: ${msg}`, { cause: err });
}

/** Lazily opened connections to one Redis, one per database index (so no SELECT bookkeeping is shared). */
export class RedisPool {
  private readonly clients = new Map<number, Promise<Redis>>();

  constructor(private readonly open: (db: number) => Promise<Redis>) {}

  /** The connection for database `db`; opened on first use, shared afterwards. */
  db(db: number): Promise<Redis> {
    let c = this.clients.get(db);
    if (!c) {
      c = this.open(db);
      this.clients.set(db, c);
      c.catch(() => this.clients.delete(db));
    }
    return c;
  }

  /** Closes every connection; the pool can be used again afterwards (connections reopen). */
  close(): void {
    for (const c of this.clients.values()) c.then((r) => r.disconnect(), () => undefined);
    this.clients.clear();
  }
}

/** INFO (default sections) as a flat record. */
export async function readInfo(client: Redis, section?: string): Promise<Record<string, string>> {
  return parseInfo(String(section === undefined ? await client.info() : await client.info(section)));
}

/** Database indexes and key counts from INFO keyspace fields ("db3" → "keys=10,expires=2,avg_ttl=0"). */
export function keyspaceOf(info: Record<string, string>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, v] of Object.entries(info)) {
    const m = /^db(\d+)$/.exec(k);
    const keys = /keys=(\d+)/.exec(v);
    if (m && keys) out.set(Number(m[1]), Number(keys[1]));
  }
  return out;
}

/** The same target at another address (a cluster master), with its credentials and TLS settings. */
export function atAddress(target: RestoreTarget, host: string, port: number, via: string): RestoreTarget {
  return { conn: { ...target.conn, host, port }, address: { host, port, via }, display: `${host}:${port}` };
}
