import type net from 'node:net';
import { sourceUnreachable } from '../../../core/errors.js';
import { abortError } from '../../../core/util/abort.js';
import { RespReader, encodeCommand } from '../protocol/resp-lines.js';
import { authError, connect, payloadStream, redact, refused, type RdbStream, type RdbStreamOptions } from './replication.js';

export interface PsyncOptions extends RdbStreamOptions {
  /** Continue this replication history from `offset` (the next byte wanted); absent: a full resync. */
  resume?: { replid: string; offset: number };
}

/** The replication feed after the handshake: the socket, and bytes already read from it. */
export interface ReplicaFeed {
  socket: net.Socket;
  leftover: Buffer;
}

export type PsyncStart =
  /** A new base: the RDB (as of `offset`), then the feed from `offset + 1` once the RDB has been read to its end. */
  | { kind: 'full'; replid: string; offset: number; rdb: RdbStream; feed: Promise<ReplicaFeed> }
  /** The master continues the history: the feed starts at the requested offset. `replid` changes after a failover. */
  | { kind: 'continue'; replid: string; feed: ReplicaFeed };

const EOF_MARK_LEN = 40;

/**
 * Attaches to a Redis master as a replica does (AUTH, `REPLCONF capa eof capa psync2`, `PSYNC`), for
 * point-in-time capture: a full resync yields the base RDB and then the command feed on the same socket; a
 * partial one (`+CONTINUE`) yields the feed at once. Errors are sourceUnreachable errors naming host:port and
 * the user, never the password.
 */
export async function openPsync(opts: PsyncOptions): Promise<PsyncStart> {
  const where = `${opts.host}:${opts.port}`;
  const user = opts.username ?? 'default';
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  if (opts.signal?.aborted) throw abortError(opts.signal);
  const socket = await connect(opts, where, timeoutMs);
  const reader = new RespReader(socket, where, opts.signal);
  const command = async (args: string[], what: string): Promise<string> => {
    socket.write(encodeCommand(args));
    return redact(await reader.line(timeoutMs, what, false), opts.password);
  };
  try {
    if (opts.password !== undefined && opts.password !== '') {
      const reply = await command(opts.username !== undefined ? ['AUTH', opts.username, opts.password] : ['AUTH', opts.password], 'AUTH');
      if (reply.startsWith('-') && !/without any password configured/i.test(reply)) throw authError(reply, where, user, opts);
    }
    const capa = await command(['REPLCONF', 'capa', 'eof', 'capa', 'psync2'], 'REPLCONF capa');
    if (capa.startsWith('-')) throw refused(capa, 'REPLCONF', where, user);
    const startedAt = new Date();
    socket.write(encodeCommand(opts.resume ? ['PSYNC', opts.resume.replid, String(opts.resume.offset)] : ['PSYNC', '?', '-1']));
    const reply = redact(await reader.line(idleMs, 'PSYNC', true), opts.password);
    if (reply.startsWith('-')) throw refused(reply, 'PSYNC', where, user);
    const cont = /^\+CONTINUE(?: ([0-9a-f]{40}))?$/.exec(reply);
    if (cont) {
      if (!opts.resume) throw sourceUnreachable(`Redis at ${where} answered a first PSYNC with "${reply}"`, 'retry');
      return { kind: 'continue', replid: cont[1] ?? opts.resume.replid, feed: { socket, leftover: reader.detach() } };
    }
    const full = /^\+FULLRESYNC ([0-9a-f]{40}) (\d+)$/.exec(reply);
    if (!full) throw sourceUnreachable(`Redis at ${where} answered PSYNC with "${reply.slice(0, 80)}"`, 'point-in-time capture needs Redis 4.0 or newer, or Valkey');
    const header = await reader.line(idleMs, 'PSYNC payload', true);
    let declaredLength: number | null = null;
    let mark: Buffer | null = null;
    if (header.startsWith('$EOF:') && header.length === 5 + EOF_MARK_LEN) mark = Buffer.from(header.slice(5), 'latin1');
    else if (/^\$\d+$/.test(header)) declaredLength = Number(header.slice(1));
    else throw sourceUnreachable(`Redis at ${where} sent "${header.slice(0, 80)}" instead of an RDB after FULLRESYNC`, 'retry');
    let handOver!: (rest: Buffer) => void;
    const feed = new Promise<ReplicaFeed>((resolve) => (handOver = (rest) => resolve({ socket, leftover: rest })));
    const stream = payloadStream(socket, reader.detach(), { where, declaredLength, mark, idleMs, signal: opts.signal, onEnd: handOver });
    return {
      kind: 'full',
      replid: full[1]!,
      offset: Number(full[2]),
      rdb: { stream, transfer: mark !== null ? 'diskless' : 'disk', declaredLength, startedAt },
      feed,
    };
  } catch (err) {
    reader.detach();
    socket.destroy();
    throw err;
  }
}
