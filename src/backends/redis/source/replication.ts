import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { sourceUnreachable } from '../../../core/errors.js';
import { RespReader, encodeCommand } from '../protocol/resp-lines.js';
import { abortError } from '../../../core/util/abort.js';

export interface RdbStreamOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** Connect with TLS using these options (CA, client certificate, servername...). */
  tls?: tls.ConnectionOptions;
  /** For the TCP/TLS connect and each handshake reply. Default 10 s. */
  connectTimeoutMs?: number;
  /** Fail when Redis sends nothing for this long while we wait for or read the RDB. Default 60 s. */
  idleTimeoutMs?: number;
  /** The setting behind idleTimeoutMs, named in the stall error ("components.redis.stallTimeout"). */
  idleSetting?: string;
  signal?: AbortSignal;
}

export interface RdbStream {
  /** Exactly the RDB bytes: no protocol framing, no end-of-transfer mark. Errors if the transfer stops early. */
  stream: Readable;
  /** 'disk': Redis wrote the RDB to disk and sent the file; 'diskless': Redis streamed it as it was produced. */
  transfer: 'disk' | 'diskless';
  /** The length Redis announced for a disk transfer; null for diskless. */
  declaredLength: number | null;
  /** When SYNC was sent: the dump is consistent as of this instant (give or take the fork). */
  startedAt: Date;
}

const EOF_MARK_LEN = 40;
const EMPTY = Buffer.alloc(0);
const FIX_NETWORK = 'check redis.host and redis.port, that Redis is running, and that this machine can reach it (firewall, security group)';
const FIX_SYNC =
  'managed Redis services (ElastiCache, MemoryDB, Azure Cache) refuse SYNC: back up with the key-level mode (redis.mode: keys); ' +
  'on your own Redis, give the ACL user +sync +replconf';

/**
 * Streams an RDB snapshot from a Redis master the way `redis-cli --rdb` does: AUTH, `REPLCONF capa eof`,
 * `REPLCONF rdb-only 1`, `SYNC`, then the bulk payload (`$<len>` for a disk transfer, `$EOF:<mark>` for a
 * diskless one). The socket is the stream's source: it is paused while the consumer is behind, closed once
 * the RDB is complete, and destroyed when the signal aborts or the consumer destroys the stream.
 * Failures to connect, authenticate or SYNC reject with sourceUnreachable errors naming host:port and the
 * user, never the password.
 */
export async function openRdbStream(opts: RdbStreamOptions): Promise<RdbStream> {
  const where = `${opts.host}:${opts.port}`;
  const user = opts.username ?? 'default';
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const signal = opts.signal;
  if (signal?.aborted) throw abortError(signal);

  const socket = await connect(opts, where, timeoutMs);
  const reader = new RespReader(socket, where, signal);
  const command = async (args: string[], what: string): Promise<string> => {
    socket.write(encodeCommand(args));
    const reply = await reader.line(timeoutMs, what, false);
    if (reply[0] !== '+' && reply[0] !== '-') {
      const shown = redact(reply.slice(0, 80), opts.password);
      throw sourceUnreachable(`the server at ${where} answered ${what} with "${shown}": it does not look like Redis`, FIX_NETWORK);
    }
    // An error may quote our arguments (e.g. "unknown command 'AUTH', with args beginning with: ...").
    return redact(reply, opts.password);
  };
  try {
    if (opts.password !== undefined && opts.password !== '') {
      const args = opts.username !== undefined ? ['AUTH', opts.username, opts.password] : ['AUTH', opts.password];
      const reply = await command(args, 'AUTH');
      if (reply.startsWith('-') && !/without any password configured/i.test(reply)) throw authError(reply, where, user, opts);
    }
    let reply = await command(['REPLCONF', 'capa', 'eof'], 'REPLCONF capa eof');
    if (reply.startsWith('-')) throw refused(reply, 'REPLCONF', where, user);
    // Redis < 6.2 does not know rdb-only: it then streams the replication feed after the RDB, which we cut.
    reply = await command(['REPLCONF', 'rdb-only', '1'], 'REPLCONF rdb-only');
    if (/^-(NOAUTH|NOPERM)/.test(reply)) throw refused(reply, 'REPLCONF', where, user);

    const startedAt = new Date();
    socket.write(encodeCommand(['SYNC']));
    const header = await reader.line(idleMs, 'SYNC', true);
    if (header.startsWith('-')) throw refused(header, 'SYNC', where, user);
    let declaredLength: number | null = null;
    let mark: Buffer | null = null;
    if (header.startsWith('$EOF:') && header.length === 5 + EOF_MARK_LEN) {
      mark = Buffer.from(header.slice(5), 'latin1');
    } else if (/^\$\d+$/.test(header)) {
      declaredLength = Number(header.slice(1));
    } else {
      throw sourceUnreachable(`Redis at ${where} answered SYNC with "${header.slice(0, 80)}", not an RDB transfer`, FIX_SYNC);
    }
    const stream = payloadStream(socket, reader.detach(), { where, declaredLength, mark, idleMs, idleSetting: opts.idleSetting, signal });
    return { stream, transfer: mark !== null ? 'diskless' : 'disk', declaredLength, startedAt };
  } catch (err) {
    reader.detach();
    socket.destroy();
    throw err;
  }
}

export function connect(opts: RdbStreamOptions, where: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const useTls = opts.tls !== undefined;
    const socket = useTls
      ? tls.connect({
          host: opts.host,
          port: opts.port,
          ...(net.isIP(opts.host) === 0 ? { servername: opts.host } : {}),
          ...opts.tls,
        })
      : net.connect({ host: opts.host, port: opts.port });
    const signal = opts.signal;
    const done = (err: Error | null) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off(useTls ? 'secureConnect' : 'connect', onConnect);
      if (err === null) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(err);
      }
    };
    const onConnect = () => {
      // The reader and the payload stream handle errors while they own the socket; this keeps an error
      // emitted between owners (or after the transfer) from becoming an uncaught exception.
      socket.on('error', () => undefined);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      done(null);
    };
    const onError = (err: NodeJS.ErrnoException) => done(connectError(err, where, useTls));
    const onAbort = () => done(abortError(signal!));
    const timer = setTimeout(
      () => done(sourceUnreachable(`cannot connect to Redis at ${where}: timed out after ${timeoutMs} ms`, FIX_NETWORK)),
      timeoutMs,
    );
    socket.once(useTls ? 'secureConnect' : 'connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function connectError(err: NodeJS.ErrnoException, where: string, useTls: boolean): Error {
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused (nothing listens there)',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ECONNRESET: 'connection reset',
  };
  const reason = (err.code !== undefined ? reasons[err.code] : undefined) ?? err.message;
  const tlsFix = useTls ? '; for TLS, check redis.tls (CA file, server name) and that Redis listens with TLS on that port' : '';
  return sourceUnreachable(`cannot connect to Redis at ${where}: ${reason}`, FIX_NETWORK + tlsFix, err);
}

export function redact(text: string, secret: string | undefined): string {
  return secret === undefined || secret === '' ? text : text.split(secret).join('***');
}

export function authError(reply: string, where: string, user: string, opts: RdbStreamOptions): Error {
  const msg = reply.slice(1);
  if (/wrong number of arguments/i.test(msg) && opts.username !== undefined) {
    return sourceUnreachable(
      `Redis at ${where} does not accept a user name with AUTH (Redis older than 6 has no ACL users): ${msg}`,
      'remove redis.username and authenticate with redis.password only',
    );
  }
  return sourceUnreachable(
    `Redis at ${where} rejected the credentials of user "${user}": ${msg}`,
    'check redis.password (and redis.username); the ACL user needs +sync +replconf to stream an RDB',
  );
}

export function refused(reply: string, cmd: string, where: string, user: string): Error {
  const msg = reply.slice(1);
  if (msg.startsWith('NOAUTH')) {
    return sourceUnreachable(`Redis at ${where} requires authentication: ${msg}`, 'set redis.password (and redis.username for an ACL user)');
  }
  if (msg.startsWith('NOPERM')) {
    return sourceUnreachable(
      `Redis at ${where} refused ${cmd} for user "${user}": ${msg}`,
      `give the ACL user +sync +replconf (e.g. ACL SETUSER ${user} +sync +replconf), or back up with the key-level mode (redis.mode: keys)`,
    );
  }
  if (/^(LOADING|BUSY|MASTERDOWN|NOMASTERLINK)/.test(msg)) {
    return sourceUnreachable(`Redis at ${where} cannot serve ${cmd} now: ${msg}`, 'retry once Redis has finished loading or has reconnected to its master');
  }
  if (cmd === 'SYNC') return sourceUnreachable(`Redis at ${where} refused SYNC: ${msg}`, FIX_SYNC);
  return sourceUnreachable(`Redis at ${where} refused ${cmd}: ${msg}`, FIX_SYNC);
}

export interface PayloadOptions {
  where: string;
  declaredLength: number | null;
  mark: Buffer | null;
  idleMs: number;
  idleSetting?: string;
  signal: AbortSignal | undefined;
  /**
   * Keep the connection after the RDB (a PSYNC replica: the command feed follows): instead of closing the
   * socket, hand it over with the bytes already read past the payload's end. Called once, after the stream ended.
   */
  onEnd?: (rest: Buffer) => void;
}

/** The RDB payload as a Readable fed by the socket, with `leftover` (bytes read past the header) first. */
export function payloadStream(socket: net.Socket, leftover: Buffer, o: PayloadOptions): Readable {
  let remaining = o.declaredLength ?? 0;
  let held: Buffer | null = null; // diskless: the bytes received last, not yet delivered (they may end with the mark)
  let received = 0;
  let finished = false;
  let handedOver = false;

  const stream = new Readable({
    highWaterMark: 256 * 1024,
    read() {
      if (!finished && socket.isPaused()) {
        socket.setTimeout(o.idleMs);
        socket.resume();
      }
    },
    destroy(err, cb) {
      cleanup();
      // After a normal end the socket belongs to onEnd's receiver (autoDestroy calls this after 'end').
      if (!(handedOver && !err)) socket.destroy();
      cb(err);
    },
  });

  const deliver = (piece: Buffer) => {
    if (piece.length > 0 && !stream.push(piece)) {
      socket.setTimeout(0); // a paused socket is not idle: the consumer is behind
      socket.pause();
    }
  };
  const complete = (rest: Buffer = EMPTY) => {
    finished = true;
    cleanup();
    if (o.onEnd) {
      handedOver = true;
      socket.pause();
      stream.push(null);
      o.onEnd(rest);
      return;
    }
    socket.destroy(); // with rdb-only Redis closes too; otherwise the replication feed would follow
    stream.push(null);
  };
  const fail = (err: Error) => {
    if (finished) return;
    finished = true;
    stream.destroy(err);
  };
  const onData = (chunk: Buffer) => {
    if (finished) return;
    received += chunk.length;
    if (o.mark === null) {
      if (chunk.length < remaining) {
        remaining -= chunk.length;
        deliver(chunk);
      } else {
        deliver(chunk.subarray(0, remaining));
        const rest = chunk.subarray(remaining);
        remaining = 0;
        complete(rest);
      }
      return;
    }
    // Diskless: the payload ends with the 40-byte mark, and the mark ends what the server sends until this side
    // acknowledges (Redis waits for REPLCONF ACK before it streams anything else; with rdb-only it closes).
    // So, as a Redis replica does, only the last 40 bytes received are compared with the mark, never the
    // whole chunk. The newest chunk is held back whole (not copied) until the next one proves it was not the end.
    const mk = o.mark;
    if (chunk.length >= EOF_MARK_LEN) {
      if (held !== null) deliver(held);
      held = chunk;
    } else {
      // A short chunk: keep only as much before it as a mark across the boundary needs.
      const prev = held ?? EMPTY;
      const keep = Math.min(prev.length, EOF_MARK_LEN);
      deliver(prev.subarray(0, prev.length - keep));
      held = Buffer.concat([prev.subarray(prev.length - keep), chunk]);
    }
    const n = held.length;
    if (n >= EOF_MARK_LEN && held[n - 1] === mk[EOF_MARK_LEN - 1] && mk.equals(held.subarray(n - EOF_MARK_LEN))) {
      deliver(held.subarray(0, n - EOF_MARK_LEN));
      held = null;
      complete();
    }
  };
  const onClose = () => {
    const got = o.mark === null ? `${o.declaredLength! - remaining} of ${o.declaredLength} RDB bytes` : `${received} bytes, before the end-of-transfer mark`;
    fail(sourceUnreachable(`Redis at ${o.where} closed the connection after ${got}`, 'retry; check the Redis log for the reason (e.g. client-output-buffer-limit replica)'));
  };
  const onError = (err: Error) =>
    fail(sourceUnreachable(`connection to Redis at ${o.where} failed during the RDB transfer: ${err.message}`, FIX_NETWORK, err));
  const onTimeout = () =>
    fail(
      sourceUnreachable(
        `Redis at ${o.where} stalled: it sent nothing for ${o.idleMs / 1000} s during the RDB transfer${o.idleSetting ? ` (${o.idleSetting})` : ''}`,
        `${FIX_NETWORK}${o.idleSetting ? `; on a slow link raise ${o.idleSetting}` : ''}`,
      ),
    );
  const onAbort = () => fail(abortError(o.signal!));
  function cleanup() {
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.off('error', onError);
    socket.off('timeout', onTimeout);
    socket.setTimeout(0);
    o.signal?.removeEventListener('abort', onAbort);
  }

  socket.on('close', onClose);
  socket.on('error', onError);
  socket.on('timeout', onTimeout);
  socket.setTimeout(o.idleMs);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (leftover.length > 0) onData(leftover);
  if (o.mark === null && o.declaredLength === 0 && !finished) complete(leftover);
  if (!finished) socket.on('data', onData);
  return stream;
}
