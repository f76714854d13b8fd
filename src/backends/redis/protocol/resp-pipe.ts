import net from 'node:net';
import tls from 'node:tls';
import { abortError } from '../../../core/util/abort.js';

/**
 * A minimal RESP2 pipeline for the bulk copy's hot path: commands are encoded straight into one buffer and
 * replies parsed without a per-command object or promise (a general client spends ~15 µs of CPU per key on
 * DUMP + PEXPIRETIME + RESTORE; this spends a few). Connection checks, auth errors and everything else use
 * ioredis; by the time a pipe opens, the address and credentials are known to work.
 */

/** An error reply (-ERR ...). Returned in place, not thrown, so one bad key does not lose the batch's other replies. */
export class RespError {
  constructor(readonly message: string) {}
}

/** Bulk strings are Buffers (null when absent), integers numbers, simple strings Buffers. */
export type RespReply = Buffer | number | null | RespError | RespReply[];

/** Builds a batch of commands in one growing buffer. */
export class CommandEncoder {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private len = 0;
  /** Commands encoded since the last take(). */
  count = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private ascii(s: string): void {
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  /** Appends one command; strings are ASCII (command names, numbers), Buffers are sent as they are. */
  command(...args: Array<Buffer | string>): void {
    this.ascii(`*${args.length}\r\n`);
    for (const a of args) {
      if (typeof a === 'string') {
        this.ascii(`$${a.length}\r\n${a}\r\n`);
      } else {
        this.ascii(`$${a.length}\r\n`);
        this.ensure(a.length + 2);
        a.copy(this.buf, this.len);
        this.len += a.length;
        this.buf[this.len++] = 13;
        this.buf[this.len++] = 10;
      }
    }
    this.count++;
  }

  /** The encoded batch (a copy) and its command count; the encoder is empty afterwards. */
  take(): { data: Buffer; count: number } {
    const out = { data: Buffer.from(this.buf.subarray(0, this.len)), count: this.count };
    this.len = 0;
    this.count = 0;
    if (this.buf.length > 4 * 1024 * 1024) this.buf = Buffer.allocUnsafe(64 * 1024);
    return out;
  }
}

const INCOMPLETE = Symbol('incomplete');

export interface RespPipeOptions {
  host: string;
  port: number;
  username?: string;
  /** Revealed by the caller at the point of use; never stored. */
  password?: string;
  tls?: tls.ConnectionOptions;
  db: number;
  connectTimeoutMs: number;
  /**
   * While a batch waits for its replies: fail it (and the connection) when no byte arrives for this long,
   * with an error whose code is 'ESTALL'. Unset: wait as long as the caller's signal allows.
   */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

/** The error a batch fails with when the server sent nothing for `idleTimeoutMs`. */
export class RespStallError extends Error {
  readonly code = 'ESTALL';
  constructor(readonly idleMs: number) {
    super(`no reply for ${Math.round(idleMs / 100) / 10} s`);
  }
}

/**
 * One connection that runs one batch at a time. Contract: exec() must not be called again before its
 * previous call settled; a connection failure rejects the pending batch and every later call.
 */
export class RespPipe {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the next reply needs before it is worth parsing again (a bulk string's length). */
  private want = 0;
  private replies: RespReply[] = [];
  private expected = 0;
  private waiter: { resolve(r: RespReply[]): void; reject(e: Error): void } | null = null;
  private failure: Error | null = null;

  private idleTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly idleMs = 0,
  ) {
    socket.on('data', (d: Buffer) => {
      this.onData(d);
      this.armIdle();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('Connection is closed')));
  }

  /** Connects, authenticates and selects the database. Errors carry Redis's own message (WRONGPASS, ...). */
  static async open(o: RespPipeOptions): Promise<RespPipe> {
    const socket = await connectSocket(o);
    const pipe = new RespPipe(socket, o.idleTimeoutMs);
    const onAbort = () => pipe.close(abortError(o.signal!));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => o.signal?.removeEventListener('abort', onAbort));
    const enc = new CommandEncoder();
    if (o.password !== undefined) {
      if (o.username !== undefined) enc.command('AUTH', Buffer.from(o.username), Buffer.from(o.password));
      else enc.command('AUTH', Buffer.from(o.password));
    }
    if (o.db !== 0) enc.command('SELECT', String(o.db));
    enc.command('PING');
    try {
      const replies = await pipe.exec(enc.take());
      const bad = replies.find((r) => r instanceof RespError) as RespError | undefined;
      if (bad) throw new Error(bad.message);
    } catch (err) {
      pipe.close();
      throw err;
    }
    return pipe;
  }

  /** Sends a batch and resolves with its replies in order (error replies as RespError values). */
  exec(batch: { data: Buffer; count: number }): Promise<RespReply[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (batch.count === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.expected = batch.count;
      this.replies = [];
      this.socket.write(batch.data);
      this.armIdle();
    });
  }

  /**
   * (Re)starts the idle clock while a batch waits; stops it when none does. Bytes still leaving count as
   * progress too (a large batch on a slow link is sent for longer than the limit before any reply).
   */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.idleMs <= 0 || this.waiter === null) return;
    const sent = this.sentBytes();
    this.idleTimer = setTimeout(() => {
      if (this.sentBytes() !== sent) this.armIdle();
      else this.close(new RespStallError(this.idleMs));
    }, this.idleMs);
  }

  /** Bytes the kernel has taken (bytesWritten counts what is still queued in Node and libuv too). */
  private sentBytes(): number {
    const queued = (this.socket as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize ?? 0;
    return this.socket.bytesWritten - this.socket.writableLength - queued;
  }

  close(reason?: Error): void {
    this.fail(reason ?? new Error('Connection is closed'));
    this.socket.destroy();
  }

  private fail(err: Error): void {
    clearTimeout(this.idleTimer);
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(this.failure);
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    if (this.buffered < this.want) return;
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    let pos = 0;
    while (pos < buf.length) {
      let r: Parsed;
      try {
        r = parse(buf, pos);
      } catch (err) {
        this.close(err as Error);
        return;
      }
      if (r === INCOMPLETE) break;
      pos = r.end;
      this.want = 0;
      this.replies.push(r.value);
      if (this.replies.length === this.expected) {
        const w = this.waiter;
        this.waiter = null;
        const out = this.replies;
        this.replies = [];
        w?.resolve(out);
      }
    }
    buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
    this.chunks = buf.length ? [buf] : [];
    this.buffered = buf.length;
    if (buf.length && this.want === 0) this.want = bulkNeed(buf) ?? 0;
  }
}

/** For a buffer starting with a bulk-string header, the bytes the whole bulk needs. */
function bulkNeed(buf: Buffer): number | null {
  if (buf[0] !== 0x24) return null;
  const nl = buf.indexOf(10);
  if (nl < 0) return null;
  return nl + 1 + Number(buf.toString('latin1', 1, nl - 1)) + 2;
}

type Parsed = { value: RespReply; end: number } | typeof INCOMPLETE;

function parse(buf: Buffer, pos: number): Parsed {
  const nl = buf.indexOf(10, pos);
  if (nl < 0) return INCOMPLETE;
  const type = buf[pos];
  const line = buf.toString('latin1', pos + 1, nl - 1);
  switch (type) {
    case 0x2b: // +
      return { value: buf.subarray(pos + 1, nl - 1), end: nl + 1 };
    case 0x2d: // -
      return { value: new RespError(buf.toString('utf8', pos + 1, nl - 1)), end: nl + 1 };
    case 0x3a: // :
      return { value: Number(line), end: nl + 1 };
    case 0x24: { // $
      const n = Number(line);
      if (n < 0) return { value: null, end: nl + 1 };
      const end = nl + 1 + n + 2;
      if (end > buf.length) return INCOMPLETE;
      return { value: buf.subarray(nl + 1, nl + 1 + n), end };
    }
    case 0x2a: { // *
      const n = Number(line);
      if (n < 0) return { value: null, end: nl + 1 };
      const items: RespReply[] = new Array(n);
      let p = nl + 1;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (r === INCOMPLETE) return INCOMPLETE;
        items[i] = r.value;
        p = r.end;
      }
      return { value: items, end: p };
    }
    default:
      throw new Error(`not a RESP reply (byte 0x${(type ?? 0).toString(16)})`);
  }
}

function connectSocket(o: RespPipeOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    o.signal?.throwIfAborted();
    const socket = o.tls
      ? tls.connect({ host: o.host, port: o.port, ...(net.isIP(o.host) === 0 ? { servername: o.host } : {}), ...o.tls })
      : net.connect({ host: o.host, port: o.port });
    const event = o.tls ? 'secureConnect' : 'connect';
    const timer = setTimeout(() => done(new Error(`connect ETIMEDOUT ${o.host}:${o.port}`)), o.connectTimeoutMs);
    const done = (err: Error | null) => {
      clearTimeout(timer);
      socket.off(event, onConnect);
      socket.off('error', done);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        socket.setNoDelay(true);
        resolve(socket);
      }
    };
    const onConnect = () => done(null);
    socket.once(event, onConnect);
    socket.once('error', done);
  });
}
