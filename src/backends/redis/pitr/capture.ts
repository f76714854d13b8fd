import type { RedisComponent } from '../../../core/config/load.js';
import { isAbortError, storeError, TykdrError } from '../../../core/errors.js';
import type { Source } from '../../../core/interfaces/source.js';
import type { ChainRecord, ChainWriter, SegmentRecord, SegmentWriter } from '../../../core/pitr/chain.js';
import { sleep } from '../../../core/util/abort.js';
import { CommandSplitter, encodeArgs } from '../formats/command-feed.js';
import { connectTimeoutMs, explainRedisError, tlsOptions, type RedisAddress } from '../protocol/connection.js';
import { resolveAddress } from '../protocol/sentinel.js';
import { RedisSource } from '../source/redis-source.js';
import { openPsync, type ReplicaFeed } from '../source/psync.js';

export interface CaptureEvents {
  connected?(e: { address: string; kind: 'full' | 'continue'; replid: string; offset: number; failover: boolean }): void;
  base?(e: { snapshot: string; offset: number }): void;
  segment?(rec: SegmentRecord): void;
  disconnected?(e: { reason: string; offset: number; retryInMs: number }): void;
  gap?(e: { from: string; to: string; reason: string }): void;
}

export interface CaptureOptions {
  cfg: RedisComponent;
  /** Takes the base snapshot through the backup pipeline with this source; resolves its id and consistent time. */
  backup(source: Source, signal: AbortSignal): Promise<{ id: string; consistentAt: string }>;
  /** Writes a chain's record and returns its writer. */
  startChain(record: Omit<ChainRecord, 'format'>): Promise<ChainWriter>;
  /** A segment closes after this long (once it holds a byte), or at `segmentBytes`. */
  segmentMs: number;
  segmentBytes: number;
  /** An idle feed (no byte, not even the master's PING) for this long counts as a lost connection. Default 60 s. */
  idleTimeoutMs?: number;
  signal: AbortSignal;
  events?: CaptureEvents;
}

export interface CaptureResult {
  chains: string[];
  segments: number;
  offset: number;
}

/** A quiet feed still gets a segment this often, so the chain's coverage keeps up with the clock. */
const HEARTBEAT_MS = 60_000;

/**
 * Point-in-time capture of one Redis component: attaches as a replica (PSYNC), stores the RDB it is sent as an
 * ordinary snapshot (the chain's base), then archives the command feed in segments until `signal` aborts.
 * It acknowledges offsets every second as a replica does (and at once on REPLCONF GETACK). When the connection
 * drops it resolves the master again (through Sentinel when configured) and continues the same history with
 * PSYNC replid offset+1 (a failover keeps the history); when the master cannot continue it, a new base starts a
 * new chain whose record names the gap. Resolves when the signal aborts, after the open segment was stored.
 */
export async function captureRedis(o: CaptureOptions): Promise<CaptureResult> {
  const result: CaptureResult = { chains: [], segments: 0, offset: 0 };
  let chain: ChainWriter | undefined;
  let replid = '';
  let offset = 0;
  let lastAt: string | null = null;
  let backoff = 1000;
  while (!o.signal.aborted) {
    let feed: ReplicaFeed;
    let addr: RedisAddress;
    /** A full resync's feed: handed over when its RDB has been read; closed here when the base fails. */
    let fullFeed: Promise<ReplicaFeed> | undefined;
    try {
      addr = await resolveAddress(o.cfg, o.signal);
      const common = {
        host: addr.host,
        port: addr.port,
        username: o.cfg.username,
        password: o.cfg.password?.reveal(),
        tls: tlsOptions(o.cfg),
        connectTimeoutMs: connectTimeoutMs(o.cfg),
        idleTimeoutMs: o.idleTimeoutMs ?? 60_000,
        signal: o.signal,
      };
      const start = await openPsync(chain ? { ...common, resume: { replid, offset: offset + 1 } } : common);
      if (start.kind === 'continue') {
        o.events?.connected?.({ address: `${addr.host}:${addr.port}`, kind: 'continue', replid: start.replid, offset, failover: start.replid !== replid });
        replid = start.replid;
        feed = start.feed;
      } else {
        o.events?.connected?.({ address: `${addr.host}:${addr.port}`, kind: 'full', replid: start.replid, offset: start.offset, failover: false });
        const previous = chain ? { chain: chain.record.chain, last_offset: offset, last_at: lastAt, reason: `the master could not continue replication id ${replid} at offset ${offset + 1}` } : undefined;
        fullFeed = start.feed;
        const facts = { replication: { replid: start.replid, offset: start.offset } };
        const base = await o.backup(new RedisSource(o.cfg, { addr, rdb: start.rdb, facts }), o.signal);
        o.events?.base?.({ snapshot: base.id, offset: start.offset });
        if (previous) o.events?.gap?.({ from: previous.last_at ?? '(start)', to: base.consistentAt, reason: previous.reason });
        chain = await o.startChain({
          chain: base.id,
          base_snapshot: base.id,
          component: o.cfg.name,
          replid: start.replid,
          base_offset: start.offset,
          base_at: base.consistentAt,
          ...(previous ? { after_gap: previous } : {}),
        });
        result.chains.push(base.id);
        replid = start.replid;
        offset = start.offset;
        feed = await start.feed;
      }
      backoff = 1000;
    } catch (err) {
      // The RDB was read but the base failed (or was stopped): the feed's socket is ours to close.
      void fullFeed?.then((f) => f.socket.destroy());
      if (o.signal.aborted || isAbortError(err)) break;
      const e = explainRedisError(err, o.cfg, { host: o.cfg.host, port: o.cfg.port, via: 'config' });
      if (!chain) throw e; // nothing captured yet: a bad address or password is the operator's to fix now
      o.events?.disconnected?.({ reason: e.message, offset, retryInMs: backoff });
      await sleep(backoff, o.signal).catch(() => undefined);
      backoff = Math.min(backoff * 2, 30_000);
      continue;
    }
    const ended = await pump(feed, chain!, {
      startOffset: offset,
      replid,
      o,
      onSegment: (rec) => {
        result.segments += 1;
        lastAt = rec.to;
        o.events?.segment?.(rec);
      },
    });
    offset = ended.offset;
    result.offset = offset;
    if (ended.error) throw ended.error;
    if (!o.signal.aborted) {
      o.events?.disconnected?.({ reason: ended.reason, offset, retryInMs: 1000 });
      await sleep(1000, o.signal).catch(() => undefined);
    }
  }
  result.offset = offset;
  return result;
}

interface PumpEnd {
  offset: number;
  reason: string;
  /** A store failure: the capture cannot go on (its chain would have a hole). */
  error?: Error;
}

/** Archives the feed of one connection until it ends or the signal aborts; the open segment is stored first. */
function pump(
  feed: ReplicaFeed,
  chain: ChainWriter,
  ctx: { startOffset: number; replid: string; o: CaptureOptions; onSegment(rec: SegmentRecord): void },
): Promise<PumpEnd> {
  const { socket } = feed;
  const { o } = ctx;
  const splitter = new CommandSplitter();
  let offset = ctx.startOffset;
  let seg: SegmentWriter = chain.open(offset + 1, ctx.replid);
  let closing: Promise<void> = Promise.resolve();
  let storeFailure: Error | undefined;
  let ended = false;
  // Idle means nothing read while reading: the socket's own timeout also counts the ACKs this side writes
  // every second, so a master that went silent (a dead path, no FIN) would never time out.
  const idleMs = o.idleTimeoutMs ?? 60_000;
  let lastReadMs = Date.now();
  let waitingForStore = false;

  return new Promise<PumpEnd>((resolve) => {
    const ack = () => {
      if (!socket.destroyed) socket.write(encodeArgs(['REPLCONF', 'ACK', String(offset)]));
    };
    const rotate = (now: number) => {
      const old = seg;
      seg = chain.open(offset + 1, ctx.replid, now);
      closing = closing
        .then(() => old.close(now))
        .then(ctx.onSegment)
        .catch((err: Error) => {
          storeFailure ??= err;
          finish('a segment could not be stored');
        });
    };
    const onData = (chunk: Buffer) => {
      const now = Date.now();
      lastReadMs = now;
      let cmds;
      try {
        cmds = splitter.push(chunk);
      } catch (err) {
        finish(`the replication feed is not RESP (${(err as Error).message})`);
        return;
      }
      if (cmds.length === 0 || !cmds.raw) return;
      offset += cmds.raw.length;
      let getack = false;
      for (const c of cmds) {
        if (c.args.length >= 2 && c.args[0]!.toString('latin1').toUpperCase() === 'REPLCONF' && c.args[1]!.toString('latin1').toUpperCase() === 'GETACK') getack = true;
      }
      if (!seg.write(cmds.raw, cmds.length, now)) {
        socket.pause();
        waitingForStore = true;
        // Resume when the store caught up with this segment: 'drain', or, when the segment was closed before
        // it drained (a rotation right after this write), 'finish' (an ended stream never emits 'drain'),
        // or 'close' when its upload failed (reported when it is closed).
        const body = seg.body;
        const resume = () => {
          body.off('drain', resume).off('finish', resume).off('close', resume);
          waitingForStore = false;
          lastReadMs = Date.now();
          if (!ended) socket.resume();
        };
        body.on('drain', resume).on('finish', resume).on('close', resume);
      }
      if (getack) ack();
      if (seg.size >= o.segmentBytes || now - seg.openedAt >= o.segmentMs) rotate(now);
    };
    // Segments close on time within a fifth of their length; offsets are acknowledged every second.
    const tick = setInterval(() => {
      const now = Date.now();
      if (!waitingForStore && now - lastReadMs >= idleMs) {
        onTimeout();
        return;
      }
      const age = now - seg.openedAt;
      if ((seg.size > 0 && age >= o.segmentMs) || age >= HEARTBEAT_MS) rotate(now);
    }, Math.max(50, Math.min(1000, Math.floor(o.segmentMs / 5))));
    const acks = setInterval(ack, 1000);
    const finish = (reason: string) => {
      if (ended) return;
      ended = true;
      clearInterval(tick);
      clearInterval(acks);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.off('timeout', onTimeout);
      o.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      const last = seg;
      const closeLast = last.size > 0 ? last.close().then(ctx.onSegment) : Promise.resolve(chain.discard(last));
      closing
        .then(() => closeLast)
        .catch((err: Error) => {
          storeFailure ??= err;
        })
        .then(() => resolve({ offset, reason, ...(storeFailure ? { error: storeFailure } : {}) }));
    };
    const onClose = () => finish('the master closed the connection');
    const onError = (err: Error) => finish(`connection error: ${err.message}`);
    const onTimeout = () => finish(`no byte from the master for ${Math.round((o.idleTimeoutMs ?? 60_000) / 1000)} s`);
    const onAbort = () => finish('stopped');
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.on('timeout', onTimeout);
    socket.setTimeout(o.idleTimeoutMs ?? 60_000);
    o.signal.addEventListener('abort', onAbort, { once: true });
    if (o.signal.aborted) onAbort();
    if (feed.leftover.length > 0) onData(feed.leftover);
    // The socket may have closed while the base was being stored: 'close' has been emitted already.
    if (socket.destroyed) onClose();
    else socket.resume();
  }).then((end) => {
    if (end.error && !(end.error instanceof TykdrError)) {
      return { ...end, error: storeError(`point-in-time capture stopped: a segment could not be stored: ${end.error.message}`, 'check the store; the next start takes a new base') };
    }
    return end;
  });
}
