import type net from 'node:net';
import { sourceUnreachable } from '../../../core/errors.js';
import { abortError } from '../../../core/util/abort.js';

/** Longest reply line accepted during the handshake: a longer one means this is not Redis. */
const MAX_LINE = 4096;

/** A RESP command as Redis expects it from a client: an array of bulk strings. */
export function encodeCommand(args: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(a, 'utf8');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Reads single-line replies (+OK, -ERR ..., $<len>) from a socket during a handshake, buffering whatever
 * arrives, until detach() hands the unread bytes to the next owner of the socket.
 */
export class RespReader {
  private pending: Buffer = Buffer.alloc(0);
  private failure: Error | null = null;
  private waiter: { resolve(line: string): void; reject(err: Error): void; skipNewlines: boolean; what: string } | null = null;
  private timer: NodeJS.Timeout | undefined;
  private timeoutMs = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly where: string,
    private readonly signal?: AbortSignal,
  ) {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * The next reply line, without its CRLF. With skipNewlines, bare "\n" keepalives before it are dropped.
   * Fails when nothing arrives for timeoutMs (every byte restarts the clock), or the connection ends.
   */
  line(timeoutMs: number, what: string, skipNewlines: boolean): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.failure !== null) {
        reject(this.failure);
        return;
      }
      this.waiter = { resolve, reject, skipNewlines, what };
      this.timeoutMs = timeoutMs;
      this.arm();
      this.pump();
    });
  }

  /** Stops listening; returns the bytes received past the last line read. */
  detach(): Buffer {
    clearTimeout(this.timer);
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    this.signal?.removeEventListener('abort', this.onAbort);
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }

  private arm(): void {
    clearTimeout(this.timer);
    const w = this.waiter;
    if (w === null) return;
    this.timer = setTimeout(
      () => this.fail(sourceUnreachable(`Redis at ${this.where} did not answer ${w.what} within ${this.timeoutMs / 1000} s`,
        'check that redis.host/redis.port point at Redis (not another service) and that Redis is not overloaded')),
      this.timeoutMs,
    );
  }

  private readonly onData = (chunk: Buffer): void => {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.waiter !== null) this.arm();
    this.pump();
  };

  private readonly onClose = (): void => {
    const what = this.waiter?.what;
    this.fail(sourceUnreachable(
      `Redis at ${this.where} closed the connection${what !== undefined ? ` before answering ${what}` : ''}`,
      'check the Redis log (maxclients reached? TLS required on that port? protected-mode?)',
    ));
  };

  private readonly onError = (err: Error): void => {
    this.fail(sourceUnreachable(`connection to Redis at ${this.where} failed: ${err.message}`,
      'check redis.host and redis.port, and that this machine can reach Redis', err));
  };

  private readonly onAbort = (): void => {
    this.fail(abortError(this.signal!));
    this.socket.destroy();
  };

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    clearTimeout(this.timer);
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }

  private pump(): void {
    const w = this.waiter;
    if (w === null) return;
    let start = 0;
    if (w.skipNewlines) while (start < this.pending.length && this.pending[start] === 0x0a) start++;
    const nl = this.pending.indexOf(0x0a, start);
    if (nl < 0) {
      this.pending = this.pending.subarray(start);
      if (this.pending.length > MAX_LINE) {
        this.fail(sourceUnreachable(`the server at ${this.where} sent a reply line longer than ${MAX_LINE} bytes: it does not look like Redis`,
          'check redis.host and redis.port'));
      }
      return;
    }
    const end = nl > start && this.pending[nl - 1] === 0x0d ? nl - 1 : nl;
    const line = this.pending.toString('latin1', start, end);
    this.pending = this.pending.subarray(nl + 1);
    this.waiter = null;
    clearTimeout(this.timer);
    w.resolve(line);
  }
}
