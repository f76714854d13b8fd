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
  /** Buffers given back by recycle(), for take() to encode the next batches in. */
  private spare: Buffer<ArrayBuffer>[] = [];
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

  /**
   * Appends `RESTORE key ttl payload REPLACE [ABSTTL]` without building strings: the bulk copy's hot path.
   * `ttl` is a whole number of ms (0: no expiry). A PayloadWriter writes its payload straight into the batch.
   */
  restore(key: Uint8Array, ttl: number, payload: Uint8Array | PayloadWriter, absTtl: boolean): void {
    const head = absTtl ? RESTORE_ABS_HEAD : RESTORE_HEAD;
    const isBytes = payload instanceof Uint8Array;
    const size = isBytes ? payload.length : payload.payloadLength;
    this.ensure(head.length + key.length + size + 96);
    const b = this.buf;
    let p = this.len;
    p += head.copy(b, p);
    p = writeBulk(b, p, key);
    p = writeUintBulk(b, p, ttl);
    if (isBytes) {
      p = writeBulk(b, p, payload);
    } else {
      p = writeBulkHead(b, p, size);
      const after = payload.writePayload(b, p);
      if (after !== p + size) throw new Error(`CommandEncoder: a payload of ${size} bytes wrote ${after - p}`);
      p = after;
      b[p++] = 13;
      b[p++] = 10;
    }
    p += (absTtl ? REPLACE_ABSTTL : REPLACE).copy(b, p);
    this.len = p;
    this.count++;
  }

  /**
   * Appends `SET key value [PXAT expireAt]` (expireAt: absolute Unix ms, 0 for no expiry), the value written straight
   * into the batch by its StringWriter. Returns false, having appended nothing, when the writer fails.
   */
  set(key: Uint8Array, value: StringWriter, expireAt: number): boolean {
    const size = value.stringLength;
    if (size < 0) return false;
    this.ensure(key.length + size + 96);
    const b = this.buf;
    let p = this.len;
    p += (expireAt > 0 ? SET_PXAT_HEAD : SET_HEAD).copy(b, p);
    p = writeBulk(b, p, key);
    p = writeBulkHead(b, p, size);
    const after = value.writeString(b, p);
    if (after !== p + size) return false;
    p = after;
    b[p++] = 13;
    b[p++] = 10;
    if (expireAt > 0) {
      p += PXAT.copy(b, p);
      p = writeUintBulk(b, p, expireAt);
    }
    this.len = p;
    this.count++;
    return true;
  }

  /**
   * Gives a batch's memory back once its bytes are sent and answered (its last reply read): take() fills it again
   * instead of allocating, so a bulk write does not hand the garbage collector a megabyte per batch. Only memory a
   * batch owns whole is kept (a handed-over buffer), two at most; anything else is left to the collector.
   */
  recycle(batch: { data: Buffer }): void {
    const ab = batch.data.buffer;
    if (!(ab instanceof ArrayBuffer) || batch.data.byteOffset !== 0 || ab.byteLength < HAND_OVER_FROM || ab.byteLength > 4 * 1024 * 1024 || this.spare.length >= 2) return;
    this.spare.push(Buffer.from(ab, 0, ab.byteLength));
  }

  /**
   * The encoded batch and its command count; the encoder is empty afterwards. The batch's memory is its own and
   * stays valid however the encoder is used: a small batch is copied; a large one (a bulk write's) keeps the
   * buffer it was encoded in, and the encoder goes on in a new one, so its bytes are not copied once more.
   */
  take(): { data: Buffer; count: number } {
    // Handed over only when the batch fills at least half its buffer: a batch never pins much more than its size.
    if (this.len < HAND_OVER_FROM || this.len < this.buf.length / 2) {
      const out = { data: Buffer.from(this.buf.subarray(0, this.len)), count: this.count };
      this.len = 0;
      this.count = 0;
      return out;
    }
    const out = { data: this.buf.subarray(0, this.len), count: this.count };
    // The next batch is likely as large: a recycled buffer, or one of the same size (a small one past 4 MiB, as a bound).
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(this.buf.length > 4 * 1024 * 1024 ? 64 * 1024 : this.buf.length);
    this.len = 0;
    this.count = 0;
    return out;
  }
}

/** A DUMP payload that writes itself into a command (formats/dump-payload.ts LazyPayloadEntry): no copy of its own. */
export interface PayloadWriter {
  readonly payloadLength: number;
  /** Writes payloadLength bytes at dst[at] (room made by the caller); returns at + payloadLength. */
  writePayload(dst: Buffer, at: number): number;
}

/** A string value that writes itself into a command (formats/dump-payload.ts LazyPayloadEntry, formats/string-value.ts). */
export interface StringWriter {
  /** The value's length in bytes; -1 when it is not a string this writer can write. */
  readonly stringLength: number;
  /** Writes stringLength bytes at dst[at] (room made by the caller); returns at + stringLength, or -1 when it cannot. */
  writeString(dst: Buffer, at: number): number;
}

/** Batches from this size on are handed over by take() rather than copied. */
const HAND_OVER_FROM = 32 * 1024;

const RESTORE_HEAD = Buffer.from('*5\r\n$7\r\nRESTORE\r\n', 'latin1');
const RESTORE_ABS_HEAD = Buffer.from('*6\r\n$7\r\nRESTORE\r\n', 'latin1');
const SET_HEAD = Buffer.from('*3\r\n$3\r\nSET\r\n', 'latin1');
const SET_PXAT_HEAD = Buffer.from('*5\r\n$3\r\nSET\r\n', 'latin1');
const PXAT = Buffer.from('$4\r\nPXAT\r\n', 'latin1');
const REPLACE = Buffer.from('$7\r\nREPLACE\r\n', 'latin1');
const REPLACE_ABSTTL = Buffer.from('$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n', 'latin1');

/** Decimal digits of n, a non-negative integer. */
function digitCount(n: number): number {
  if (n > Number.MAX_SAFE_INTEGER) return String(n).length;
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/**
 * Writes n (a non-negative integer) in decimal at b[p]; returns the position after it. Digit by digit, not through
 * a string: a bulk write writes two numbers per key (a payload's length, an expiry in ms).
 */
function writeUint(b: Buffer, p: number, n: number): number {
  if (n < 10) {
    b[p] = 0x30 + n;
    return p + 1;
  }
  // Past 2^53 the arithmetic below is not exact: the string is.
  if (n > Number.MAX_SAFE_INTEGER) return p + b.write(String(n), p, 'latin1');
  const end = p + digitCount(n);
  let q = end;
  while (n >= 10) {
    const next = Math.floor(n / 10);
    b[--q] = 0x30 + (n - next * 10);
    n = next;
  }
  b[--q] = 0x30 + n;
  return end;
}

/** Writes a bulk string's head, `$len\r\n`, at b[p] (room checked by the caller); returns the position after it. */
function writeBulkHead(b: Buffer, p: number, len: number): number {
  b[p++] = 0x24;
  p = writeUint(b, p, len);
  b[p++] = 13;
  b[p++] = 10;
  return p;
}

/** Writes n (a non-negative integer) as a bulk string, `$digits\r\nn\r\n`, at b[p]; returns the position after it. */
function writeUintBulk(b: Buffer, p: number, n: number): number {
  p = writeUint(b, writeBulkHead(b, p, digitCount(n)), n);
  b[p++] = 13;
  b[p++] = 10;
  return p;
}

/** Writes `$len\r\nbytes\r\n` at b[p] (room checked by the caller); returns the position after it. */
function writeBulk(b: Buffer, p: number, data: Uint8Array): number {
  p = writeBulkHead(b, p, data.length);
  b.set(data, p);
  p += data.length;
  b[p++] = 13;
  b[p++] = 10;
  return p;
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
 * One connection that runs batches in order. Contract: exec() may be called again before its previous call
 * settled (the batches are pipelined; each resolves with its own replies, in call order); a connection
 * failure rejects every pending batch and every later call.
 */
export class RespPipe {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the next reply needs before it is worth parsing again (a bulk string's length). */
  private want = 0;
  /** Batches sent and not yet answered whole, oldest first; replies go to the first. */
  private readonly waiters: Array<{ expected: number; replies: RespReply[]; resolve(r: RespReply[]): void; reject(e: Error): void }> = [];
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
      this.waiters.push({ expected: batch.count, replies: [], resolve, reject });
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
    if (this.idleMs <= 0 || this.waiters.length === 0) return;
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
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
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
      const w = this.waiters[0];
      if (!w) {
        this.close(new Error('a reply arrived with no command waiting for it'));
        return;
      }
      w.replies.push(r.value);
      if (w.replies.length === w.expected) {
        this.waiters.shift();
        w.resolve(w.replies);
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

/** The reply +OK (RESTORE's, by the thousand): one shared Buffer, not one per reply. */
const OK = Buffer.from('OK', 'latin1');

function parse(buf: Buffer, pos: number): Parsed {
  const type = buf[pos];
  if (type === 0x2b && buf[pos + 1] === 0x4f && buf[pos + 2] === 0x4b && buf[pos + 3] === 13 && buf[pos + 4] === 10) return { value: OK, end: pos + 5 };
  const nl = buf.indexOf(10, pos);
  if (nl < 0) return INCOMPLETE;
  const line = type === 0x2b || type === 0x2d ? '' : buf.toString('latin1', pos + 1, nl - 1);
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
