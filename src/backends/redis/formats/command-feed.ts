/**
 * Splits a Redis replication feed (RESP arrays of bulk strings, as a master sends them to its replicas and
 * as an AOF holds them) into whole commands, across chunk boundaries. `push` returns the commands that the
 * chunk completed, each with its arguments and the feed offset just past it; a partial command waits for
 * the next chunk. Bytes that are not RESP arrays (a bare newline keepalive) are skipped as one-byte
 * "commands" with no arguments, so offsets still add up.
 */
export interface FeedCommand {
  args: Buffer[];
  /** Feed offset (bytes since the splitter started) just past this command. */
  end: number;
}

export class CommandSplitter {
  private buf: Buffer = Buffer.alloc(0);
  /** Feed offset of buf[0]. */
  private base = 0;
  /** Chunks received after buf that cannot complete its command yet (joined once `need` bytes are there). */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Bytes buf (with parts) must hold before its unfinished command can complete: a large value arriving in
   * many chunks is joined once, not once per chunk. */
  private need = 0;

  /** The commands `chunk` completed, and their bytes (one contiguous slice, exactly as received). */
  push(chunk: Buffer): FeedCommand[] & { raw?: Buffer } {
    const out: FeedCommand[] & { raw?: Buffer } = [];
    if (this.buf.length > 0 && this.buf.length + this.partsBytes + chunk.length < this.need) {
      this.parts.push(chunk);
      this.partsBytes += chunk.length;
      return out;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, ...this.parts, chunk]);
    this.parts = [];
    this.partsBytes = 0;
    let pos = 0;
    const hint = { need: 0 };
    for (;;) {
      const parsed = parseCommand(this.buf, pos, hint);
      if (parsed === null) break;
      out.push({ args: parsed.args, end: this.base + parsed.next });
      pos = parsed.next;
    }
    this.base += pos;
    this.need = hint.need - pos;
    out.raw = this.buf.subarray(0, pos);
    // Keep only the unfinished tail; copy it so the chunk it came from can be released.
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
    return out;
  }

  /** Bytes held for a command not yet complete. */
  get pending(): number {
    return this.buf.length + this.partsBytes;
  }
}

/**
 * One command at `pos`, or null when the buffer ends inside it (then `hint.need`, when given, is a buffer
 * length the command needs at least). Throws on bytes that are not RESP.
 */
export function parseCommand(buf: Buffer, pos: number, hint?: { need: number }): { args: Buffer[]; next: number } | null {
  if (pos >= buf.length) return null;
  const c = buf[pos];
  if (c === 0x0a || c === 0x0d) return { args: [], next: pos + 1 };
  if (c !== 0x2a /* * */) {
    // An inline command (PING from old masters): up to the end of line.
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return null;
    const line = buf.subarray(pos, nl).toString('latin1').replace(/\r$/, '');
    return { args: line.split(' ').filter((s) => s !== '').map((s) => Buffer.from(s, 'latin1')), next: nl + 1 };
  }
  const head = readLine(buf, pos + 1);
  if (head === null) return null;
  const n = Number(head.text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`bad RESP array header "*${head.text.slice(0, 20)}"`);
  let p = head.next;
  const args: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (p >= buf.length) return null;
    if (buf[p] !== 0x24 /* $ */) throw new Error(`bad RESP bulk header at byte ${p}`);
    const len = readLine(buf, p + 1);
    if (len === null) return null;
    const size = Number(len.text);
    if (!Number.isInteger(size) || size < 0) throw new Error(`bad RESP bulk length "${len.text.slice(0, 20)}"`);
    if (len.next + size + 2 > buf.length) {
      if (hint) hint.need = len.next + size + 2;
      return null;
    }
    args.push(buf.subarray(len.next, len.next + size));
    p = len.next + size + 2;
  }
  return { args, next: p };
}

function readLine(buf: Buffer, pos: number): { text: string; next: number } | null {
  const nl = buf.indexOf(0x0a, pos);
  if (nl < 0) return null;
  return { text: buf.subarray(pos, nl - 1).toString('latin1'), next: nl + 1 };
}

/** RESP encoding of a command (an array of bulk strings). */
export function encodeArgs(args: Array<Buffer | string>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`, 'latin1'), b, Buffer.from('\r\n', 'latin1'));
  }
  return Buffer.concat(parts);
}
