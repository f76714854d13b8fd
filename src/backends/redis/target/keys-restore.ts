import type { KeyRecord } from '../formats/keys-reader.js';
import { LazyPayloadEntry } from '../formats/dump-payload.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import { CommandEncoder, RespError, type RespPipe } from '../protocol/resp-pipe.js';

/** Where a record goes: a lane is one connection (a database of a server, or a cluster master). */
export interface KeyRouter {
  /** The lane for a key of database `db`; the same key always maps to the same lane. */
  laneOf(db: number, key: Buffer): number;
  /** Opens the connection of a lane (called once per lane, on first use). */
  open(lane: number): Promise<RespPipe>;
  /** "database 3", "127.0.0.1:7001": for messages. */
  describe(lane: number): string;
}

export interface KeysWriteOptions {
  /** The staged records, in batches: a keys stream, or payloads cut from an RDB. Read once. */
  records: AsyncIterable<KeyRecord[]>;
  classes: ReadonlySet<KeyClass>;
  /** Records per pipelined batch (over all lanes). */
  batchSize: number;
  /** The target accepts RESTORE ... ABSTTL (Redis 5.0+); else the TTL is sent relative. */
  absTtl: boolean;
  router: KeyRouter;
  /** Turns a failure on the target into the error to throw (names the target, never a key). */
  explain: (err: unknown, doing: string) => Error;
  totalRecords: number;
  signal?: AbortSignal;
  progress?: (e: { phase: string; keys?: number; totalKeys?: number }) => void;
}

export interface KeysWriteResult {
  restored: Record<KeyClass, number>;
  /** Records left out because their class is not restored. */
  skipped: Record<KeyClass, number>;
  /** Records whose expiry had passed before they could be restored. */
  expired: number;
  durationMs: number;
  keysPerSecond: number;
}

/** Batches in flight per restore (each lane's connection pipelines them; see RespPipe.exec). */
const PIPELINE_DEPTH = 3;

interface Lane {
  enc: CommandEncoder;
  pipe: Promise<RespPipe> | null;
}

/**
 * Streams the staged records into the target: `RESTORE key ttl payload REPLACE ABSTTL` per record of a
 * restored class, pipelined per lane. Up to PIPELINE_DEPTH batches are in flight while the next is read and
 * encoded, so memory is PIPELINE_DEPTH + 1 batches. Expired records are skipped (RESTORE REPLACE with a past ABSTTL would delete the target's
 * key). Keys restored before a failure stay restored; running it again is safe.
 */
export async function writeKeys(o: KeysWriteOptions): Promise<KeysWriteResult> {
  const started = Date.now();
  const restored = emptyClassCounts();
  const skipped = emptyClassCounts();
  let expired = 0;
  let seen = 0;
  let pending = 0;
  const lanes = new Map<number, Lane>();
  // Batches sent and not yet answered, oldest first: up to PIPELINE_DEPTH, so the target always has the next
  // batch queued while node cuts and encodes the one after.
  const inFlight: Array<Promise<void>> = [];

  const flush = async () => {
    const batches: Array<{ lane: number; l: Lane; batch: { data: Buffer; count: number } }> = [];
    for (const [lane, l] of lanes) if (l.enc.count > 0) batches.push({ lane, l, batch: l.enc.take() });
    const done = seen;
    pending = 0;
    while (inFlight.length >= PIPELINE_DEPTH) await inFlight.shift();
    const w = Promise.all(
      batches.map(async ({ lane, l, batch }) => {
        let pipe: RespPipe;
        try {
          pipe = await (l.pipe ??= o.router.open(lane));
        } catch (err) {
          throw o.explain(err, `connect to ${o.router.describe(lane)}`);
        }
        let replies;
        try {
          replies = await pipe.exec(batch);
        } catch (err) {
          throw o.explain(err, `RESTORE keys on ${o.router.describe(lane)}`);
        }
        for (const r of replies) if (r instanceof RespError) throw o.explain(new Error(r.message), `RESTORE keys on ${o.router.describe(lane)}`);
      }),
    ).then(() => o.progress?.({ phase: 'restore', keys: done, totalKeys: o.totalRecords }));
    w.catch(() => undefined);
    inFlight.push(w);
  };

  try {
    for await (const records of o.records) {
      o.signal?.throwIfAborted();
      const now = Date.now();
      for (const rec of records) {
        seen++;
        const cls = classifyKey(rec.key);
        if (!o.classes.has(cls)) {
          skipped[cls]++;
          continue;
        }
        if (rec.expireAt >= 0 && rec.expireAt <= now) {
          expired++;
          continue;
        }
        const lane = o.router.laneOf(rec.db, rec.key);
        let l = lanes.get(lane);
        if (!l) lanes.set(lane, (l = { enc: new CommandEncoder(), pipe: null }));
        const ttl = rec.expireAt < 0 ? 0 : o.absTtl ? rec.expireAt : Math.max(1, rec.expireAt - now);
        // A payload cut from an RDB is written straight into the batch (not built, then copied).
        l.enc.restore(rec.key, ttl, rec instanceof LazyPayloadEntry ? rec : rec.payload, o.absTtl);
        restored[cls]++;
        if (++pending >= o.batchSize) await flush();
      }
    }
    await flush();
    while (inFlight.length > 0) await inFlight.shift();
  } finally {
    for (const l of lanes.values()) l.pipe?.then((p) => p.close(), () => undefined);
  }
  const durationMs = Date.now() - started;
  const total = Object.values(restored).reduce((a, b) => a + b, 0);
  return { restored, skipped, expired, durationMs, keysPerSecond: durationMs > 0 ? Math.round((total * 1000) / durationMs) : total };
}
