import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { tlsOptions } from '../backends/redis/protocol/connection.js';
import type { Config, RedisComponent } from '../core/config/load.js';
import { badInput } from '../core/errors.js';
import { errorMessage, type Logger } from './log.js';

/**
 * The lease behind leader election. Every method may reject when the lock store cannot be reached;
 * none retries. `token` identifies one daemon process (its instance id plus a random nonce).
 */
export interface LockBackend {
  /** SET key token NX PX ttl: true when this call took the lock. */
  acquire(token: string, ttlMs: number): Promise<boolean>;
  /** Extends the lease only if the key still holds `token` (compare-and-renew); false when it does not. */
  renew(token: string, ttlMs: number): Promise<boolean>;
  /** Deletes the key only if it still holds `token` (compare-and-delete). */
  release(token: string): Promise<boolean>;
  /** Who holds the lock and for how much longer; null when nobody does. */
  holder(): Promise<{ token: string; pttlMs: number } | null>;
  close(): Promise<void>;
  /** For logs: "redis 10.0.0.5:6379 key tykdr:daemon:leader". */
  readonly description: string;
}

/** The subset of ioredis the lock calls. */
export interface LockRedisClient {
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * The lock on a Redis connection. `ready`, when given, is awaited before every command (e.g. until the
 * first connection is up, bounded by a timeout), since commands fail at once while disconnected.
 */
export function redisLock(client: LockRedisClient, key: string, description: string, ready: () => Promise<void> = async () => {}): LockBackend {
  const call = async (command: string, ...args: Array<string | number>) => {
    await ready();
    return client.call(command, ...args);
  };
  return {
    description,
    acquire: async (token, ttlMs) => (await call('SET', key, token, 'NX', 'PX', Math.ceil(ttlMs))) === 'OK',
    renew: async (token, ttlMs) => Number(await call('EVAL', RENEW, 1, key, token, Math.ceil(ttlMs))) === 1,
    release: async (token) => Number(await call('EVAL', RELEASE, 1, key, token)) === 1,
    holder: async () => {
      const [token, pttl] = await Promise.all([call('GET', key), call('PTTL', key)]);
      if (token === null || token === undefined) return null;
      return { token: String(token), pttlMs: Number(pttl) };
    },
    close: async () => {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}

/**
 * Connects to the lock's Redis: config.leader when it names a host, else the first redis component
 * (its address or Sentinel master, credentials and TLS). The connection reconnects by itself; commands
 * fail fast while it is down (no offline queue) and time out after `commandTimeoutMs`.
 */
export function openLeaderLock(config: Config, log: Logger, commandTimeoutMs: number): LockBackend {
  const l = config.leader;
  const first = Object.values(config.components).find((c): c is RedisComponent => c.kind === 'redis');
  let opts: RedisOptions;
  let where: string;
  if (l.host !== undefined) {
    opts = {
      host: l.host,
      port: l.port ?? 6379,
      username: l.username,
      password: l.password?.reveal(),
      db: l.db ?? 0,
      tls: leaderTls(l.tls, l.host),
    };
    where = `${l.host}:${l.port ?? 6379}`;
  } else if (first) {
    opts = {
      username: l.username ?? first.username,
      password: l.password?.reveal() ?? first.password?.reveal(),
      db: l.db ?? first.db,
      tls: tlsOptions(first),
      ...(first.sentinel
        ? {
            sentinels: first.sentinel.sentinels,
            name: first.sentinel.masterName,
            role: 'master' as const,
            sentinelUsername: first.sentinel.username,
            sentinelPassword: first.sentinel.password?.reveal(),
          }
        : { host: first.host, port: l.port ?? first.port }),
    };
    where = first.sentinel ? `sentinel master ${first.sentinel.masterName} (components.${first.name})` : `${first.host}:${l.port ?? first.port} (components.${first.name})`;
  } else {
    throw badInput(
      `leader election needs a Redis, and ${config.file} has neither leader.host nor a redis component`,
      'set leader.host (and port, password) to a Redis all daemons share, or pass --no-leader when only one daemon runs',
    );
  }
  const client = new Redis({
    ...opts,
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: commandTimeoutMs,
    retryStrategy: (times) => Math.min(100 * times, commandTimeoutMs),
  });
  let down = false;
  client.on('error', (err: unknown) => {
    if (down) return;
    down = true;
    log.warn('leader lock: Redis connection failed; retrying', { redis: where, error: err });
  });
  client.on('ready', () => {
    if (down) log.info('leader lock: Redis connection restored', { redis: where });
    down = false;
  });
  // Waits (up to one command timeout) for the connection to be ready, so the first attempt does not fail
  // just because the connection is still being set up.
  const ready = () =>
    client.status === 'ready'
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const done = (err?: Error) => {
            clearTimeout(timer);
            client.off('ready', onReady);
            if (err) reject(err);
            else resolve();
          };
          const onReady = () => done();
          const timer = setTimeout(() => done(new Error(`not connected to ${where} within ${Math.round(commandTimeoutMs)} ms`)), commandTimeoutMs);
          client.once('ready', onReady);
        });
  return redisLock(client as unknown as LockRedisClient, l.key, `redis ${where} key ${l.key}`, ready);
}

function leaderTls(t: Config['leader']['tls'], host: string): ConnectionOptions | undefined {
  if (!t || !t.enabled) return undefined;
  const read = (file: string | undefined, what: string) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw badInput(`leader.tls.${what}: cannot read ${file} (${errorMessage(err)})`, 'check the path');
    }
  };
  return {
    ca: read(t.ca, 'ca'),
    cert: read(t.cert, 'cert'),
    key: read(t.key, 'key'),
    servername: t.servername ?? (isIP(host) ? undefined : host),
    rejectUnauthorized: !t.insecureSkipVerify,
  };
}
