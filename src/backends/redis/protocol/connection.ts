import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Redis, RedisOptions } from 'ioredis';
import type { RedisComponent } from '../../../core/config/load.js';
import { badInput, sourceUnreachable, TykdrError } from '../../../core/errors.js';
import { parseDuration } from '../../../core/duration.js';

export interface RedisAddress {
  host: string;
  port: number;
  /** How it was found: "config", "sentinel master", "sentinel replica". */
  via: string;
}

export function tlsOptions(c: RedisComponent): ConnectionOptions | undefined {
  const t = c.tls;
  if (!t || !t.enabled) return undefined;
  const read = (file: string | undefined, what: string) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw badInput(`components.${c.name}.tls.${what}: cannot read ${file}`, 'check the path', err);
    }
  };
  return {
    ca: read(t.ca, 'ca'),
    cert: read(t.cert, 'cert'),
    key: read(t.key, 'key'),
    // SNI must not be an IP address (RFC 6066); certificates for IPs are still checked against the SAN.
    servername: t.servername ?? (isIP(c.host) ? undefined : c.host),
    rejectUnauthorized: !t.insecureSkipVerify,
  };
}

export function connectTimeoutMs(c: RedisComponent): number {
  return parseDuration(c.connectTimeout) ?? 10_000;
}

/** components.<name>.stallTimeout: how long a transfer may move no byte before it fails. */
export function stallTimeoutMs(c: RedisComponent): number {
  return parseDuration(c.stallTimeout ?? '60s') ?? 60_000;
}

/** A plain command connection (not the replication one): no retries, no offline queue, fails fast. */
export async function connectRedis(c: RedisComponent, addr: RedisAddress): Promise<Redis> {
  const opts: RedisOptions = {
    host: addr.host,
    port: addr.port,
    username: c.username,
    password: c.password?.reveal(),
    tls: tlsOptions(c),
    db: c.db,
    lazyConnect: true,
    connectTimeout: connectTimeoutMs(c),
    // A server that stops answering fails the command ("Command timed out") instead of hanging it.
    commandTimeout: stallTimeoutMs(c),
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  };
  // ioredis is imported on first use: an RDB backup streams over its own socket and never needs it.
  const { Redis } = await import('./ioredis-client.js');
  const client = new Redis(opts);
  // ioredis rejects connect() with "Connection is closed"; the cause (ECONNREFUSED, WRONGPASS) is an event.
  let cause: unknown;
  client.on('error', (err: unknown) => (cause ??= err));
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (err) {
    client.disconnect();
    throw explainRedisError(cause ?? err, c, addr);
  }
}

/** Maps connection and auth failures to errors that name the component, the address and the fix (never the password). */
export function explainRedisError(err: unknown, c: RedisComponent, addr: RedisAddress): Error {
  if (err instanceof TykdrError) return err;
  const where = `components.${c.name}: Redis at ${addr.host}:${addr.port}${addr.via === 'config' ? '' : ` (${addr.via})`}`;
  const msg = String((err as Error)?.message ?? err);
  const code = (err as NodeJS.ErrnoException)?.code;
  const user = c.username ?? 'default';
  if (/WRONGPASS|invalid password|invalid username-password/i.test(msg)) {
    return sourceUnreachable(
      `${where} refused the credentials of user "${user}" (WRONGPASS)`,
      `check components.${c.name}.password${c.username ? ' and username' : ''} (use \${ENV_VAR} for the password)`,
      err,
    );
  }
  if (/NOAUTH/i.test(msg)) {
    return sourceUnreachable(`${where} requires a password (NOAUTH)`, `set components.${c.name}.password`, err);
  }
  if (/^Command timed out/.test(msg)) {
    const setting = `components.${c.name.replace(/\.restore\.target$/, '')}.stallTimeout`;
    return sourceUnreachable(
      `${where} stopped answering: a command got no reply within ${c.stallTimeout ?? '60s'} (${setting})`,
      `check the network path to ${addr.host}:${addr.port} and that Redis answers (a blocked or overloaded server); on a slow link raise ${setting}`,
      err,
    );
  }
  if (/NOPERM/i.test(msg)) {
    return sourceUnreachable(
      `${where}: user "${user}" lacks a permission tykdr needs (${msg.split('\n')[0]})`,
      'grant the ACL user +ping +info +sync +replconf (e.g. ACL SETUSER tykdr on >... +@connection +info +sync +replconf)',
      err,
    );
  }
  if (/certificate|self.signed|ERR_TLS|UNABLE_TO_VERIFY/i.test(`${code ?? ''} ${msg}`)) {
    return sourceUnreachable(
      `${where}: TLS handshake failed (${msg.split('\n')[0]})`,
      `set components.${c.name}.tls.ca to the CA that signed the server certificate (or tls.servername to the name in it)`,
      err,
    );
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || /ETIMEDOUT|timed? ?out/i.test(msg)) {
    return sourceUnreachable(
      `${where} is unreachable (${code ?? msg})`,
      `check components.${c.name}.host and port, and that Redis is running`,
      err,
    );
  }
  return sourceUnreachable(`${where}: ${msg.split('\n')[0]}`, undefined, err);
}

/** Parses an INFO reply into a flat record. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** Per database index, the keys and expires INFO keyspace reports ("db3" → "keys=10,expires=2,avg_ttl=0"). */
export function parseKeyspace(info: Record<string, string>): Map<number, { keys: number; expires: number }> {
  const out = new Map<number, { keys: number; expires: number }>();
  for (const [k, v] of Object.entries(info)) {
    const m = /^db(\d+)$/.exec(k);
    if (!m) continue;
    out.set(Number(m[1]), { keys: Number(/keys=(\d+)/.exec(v)?.[1] ?? 0), expires: Number(/expires=(\d+)/.exec(v)?.[1] ?? 0) });
  }
  return new Map([...out].sort((a, b) => a[0] - b[0]));
}
