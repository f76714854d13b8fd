import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * The master's side of Redis replication, just enough for one full sync of a file: a TCP listener a target
 * Redis connects to after `REPLICAOF host port`. It answers the replica's handshake (PING, AUTH, REPLCONF),
 * answers PSYNC (or SYNC) with +FULLRESYNC and sends the staged RDB as one `$<size>` bulk payload, then keeps
 * the link open and silent until it is closed (the replica's REPLCONF ACKs get no answer, as from a master).
 * It never sends a command down the link, so the replica's dataset is exactly the file.
 *
 * The RDB holds credentials (Tyk API keys): only a connection that sent AUTH with `password` (the one-time
 * masterauth the restore set on the target) gets it. It serves at most `maxSyncs` full syncs (a replica that
 * dropped the link retries): after that a replica is disconnected. Never logs the AUTH arguments.
 */
export interface ReplicaFeedOptions {
  /** The RDB's bytes from the start (read from the staged file, or decompressed from it as they are sent), and how many there are. */
  open(): Readable;
  size: number;
  host: string;
  /** 0: a free port. */
  port: number;
  /** The password the replica must AUTH with (its masterauth). */
  password: string;
  maxSyncs?: number;
}

export class ReplicaFeed {
  /** Bytes of the RDB written to the current replica so far. */
  sent = 0;
  syncs = 0;
  /** A replica's connection that reached PSYNC (the current one). */
  replica: string | null = null;
  /** Why the last sync's link ended before it was closed by us, if it did. */
  dropped: string | null = null;
  /** The RDB could not be sent whole (read error, or not the size the manifest lists): the load must fail. */
  failed = false;
  private readonly sockets = new Set<Socket>();
  private connectedWaiters: Array<() => void> = [];
  private closing = false;

  private constructor(
    private readonly server: Server,
    private readonly o: ReplicaFeedOptions,
    readonly address: { host: string; port: number },
  ) {}

  static async listen(o: ReplicaFeedOptions): Promise<ReplicaFeed> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    const feed = new ReplicaFeed(server, o, { host: o.host, port: a !== null && typeof a === 'object' ? a.port : o.port });
    server.on('connection', (s) => feed.serve(s));
    server.on('error', () => undefined);
    return feed;
  }

  /** Resolves once a replica has asked for the sync; false after `ms` without one. */
  waitForReplica(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.syncs > 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        this.connectedWaiters = this.connectedWaiters.filter((w) => w !== ok);
        resolve(v);
      };
      const ok = () => done(true);
      const onAbort = () => done(false);
      const t = setTimeout(() => done(false), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.connectedWaiters.push(ok);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(s: Socket): void {
    this.sockets.add(s);
    s.setNoDelay(true);
    s.on('error', () => undefined);
    let buf: Buffer = Buffer.alloc(0);
    let syncing = false;
    let authed = false;
    s.on('close', () => {
      this.sockets.delete(s);
      if (syncing && !this.closing) this.dropped ??= `the target closed the replication link after ${this.sent} of ${this.o.size} bytes`;
    });
    s.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length > 64 * 1024) {
        s.destroy(); // no replica handshake command is that long
        return;
      }
      for (;;) {
        const parsed = parseCommand(buf);
        if (parsed === null) break;
        buf = buf.subarray(parsed.used);
        if (parsed.args.length === 0) continue;
        const cmd = parsed.args[0]!.toLowerCase();
        if (syncing) continue; // REPLCONF ACK and the like: a master does not answer them
        if (cmd === 'ping') s.write('+PONG\r\n');
        else if (cmd === 'auth') {
          authed = sameSecret(parsed.args[parsed.args.length - 1]!, this.o.password);
          s.write(authed ? '+OK\r\n' : '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
        } else if (cmd === 'replconf') s.write('+OK\r\n');
        else if ((cmd === 'psync' || cmd === 'sync') && !authed) s.end('-NOAUTH Authentication required.\r\n');
        else if (cmd === 'psync' || cmd === 'sync') {
          if (this.syncs >= (this.o.maxSyncs ?? 1)) {
            s.end('-ERR tykdr serves one full sync per restore\r\n');
            return;
          }
          syncing = true;
          this.syncs++;
          this.replica = `${s.remoteAddress}:${s.remotePort}`;
          this.dropped = null;
          this.sent = 0;
          if (cmd === 'psync') s.write(`+FULLRESYNC ${randomBytes(20).toString('hex')} 0\r\n`);
          s.write(`$${this.o.size}\r\n`);
          this.sendFile(s);
          for (const w of this.connectedWaiters.splice(0)) w();
        } else s.write(`-ERR unknown command '${cmd.slice(0, 32).replace(/[^\x20-\x7e]/g, '?')}'\r\n`);
      }
    });
  }

  private sendFile(s: Socket): void {
    const rs = this.o.open();
    const fail = (why: string) => {
      this.dropped = why;
      this.failed = true;
      s.destroy();
    };
    rs.on('data', (c: Buffer) => {
      if (this.sent + c.length > this.o.size) {
        fail(`the staged RDB holds more than the ${this.o.size} bytes the manifest lists`);
        rs.destroy();
        return;
      }
      this.sent += c.length;
      if (!s.write(c)) {
        rs.pause();
        s.once('drain', () => rs.resume());
      }
    });
    // Fewer bytes than announced would leave the replica waiting for the rest: the link is closed instead.
    rs.on('end', () => {
      if (this.sent !== this.o.size) fail(`the staged RDB holds ${this.sent} bytes, the manifest lists ${this.o.size}`);
    });
    rs.on('error', (err) => fail(`reading the staged RDB failed: ${err.message}`));
    // A link closed before the whole file went out stops the read. One closed after it (the replica loaded it and
    // was promoted: a small file can be loaded before the stream has even ended) lets the stream run to its end,
    // so whatever reads the same stream beside the link (the restore's evidence) gets all of it.
    s.on('close', () => {
      if (this.sent < this.o.size) rs.destroy();
      else rs.resume();
    });
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1');
  const y = Buffer.from(b, 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** One command from a RESP array of bulk strings, or an inline command; null until it is whole. */
function parseCommand(b: Buffer): { args: string[]; used: number } | null {
  if (b.length === 0) return null;
  if (b[0] !== 0x2a /* '*' */) {
    const nl = b.indexOf(0x0a);
    if (nl < 0) return null;
    const line = b.subarray(0, nl).toString('latin1').replace(/\r$/, '').trim();
    return { args: line === '' ? [] : line.split(/\s+/), used: nl + 1 };
  }
  let at = b.indexOf(0x0a);
  if (at < 0) return null;
  const n = Number(b.subarray(1, at - 1).toString('latin1'));
  at += 1;
  const args: string[] = [];
  for (let i = 0; i < n; i++) {
    const nl = b.indexOf(0x0a, at);
    if (nl < 0 || b[at] !== 0x24 /* '$' */) return null;
    const len = Number(b.subarray(at + 1, nl - 1).toString('latin1'));
    const start = nl + 1;
    if (b.length < start + len + 2) return null;
    args.push(b.subarray(start, start + len).toString('latin1'));
    at = start + len + 2;
  }
  return { args, used: at };
}
