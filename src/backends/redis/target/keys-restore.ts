import { randomBytes } from 'node:crypto';
import type { KeyRecord } from '../formats/keys-reader.js';
import { LazyPayloadEntry } from '../formats/dump-payload.js';
import { RDB_TYPE } from '../formats/rdb-constants.js';
import { PayloadString } from '../formats/string-value.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import { CommandEncoder, RespError, type RespPipe, type RespReply, type StringWriter } from '../protocol/resp-pipe.js';

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
  /**
   * String values go in as `SET key value [PXAT ms]`, decoded here, on each connection whose target takes that command
   * (probed once per connection, setProbe); other types, and every key where it does not, by RESTORE.
   */
  setStrings?: boolean;
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
  /** Of the restored keys, those written with SET (string values; the rest by RESTORE). */
  bySet: number;
  /** Why a connection wrote strings with RESTORE although setStrings asked for SET (the first such answer). */
  setRefused?: string;
  durationMs: number;
  keysPerSecond: number;
}

/** Batches in flight per restore (each lane's connection pipelines them; see RespPipe.exec). */
const PIPELINE_DEPTH = 3;

interface Lane {
  enc: CommandEncoder;
  pipe: RespPipe;
  /** Strings go in with SET on this connection (setProbe said yes). */
  set: boolean;
}

/**
 * Whether a connection takes `SET key value PXAT ms`: SET of `key`, which no one holds, with XX, so nothing is written.
 * Null for yes, else what the target answered. Any refusal means no: NOPERM (an ACL without +set, or keys outside the
 * user's patterns), a syntax error (a Redis before 6.2: no PXAT), a renamed command. So does MOVED or ASK: a Cluster
 * node checks ACLs before the slot but the syntax after it, so the key must be of a slot the node serves (probeKey).
 */
export async function setProbe(pipe: RespPipe, key: Buffer | string = probeKeyName()): Promise<string | null> {
  const enc = new CommandEncoder();
  enc.command('SET', key, '1', 'XX', 'PXAT', String(Date.now() + 60_000));
  const [r] = await pipe.exec(enc.take());
  if (r === null) return null;
  return r instanceof RespError ? r.message.split('\n')[0]!.slice(0, 200) : `SET ... XX answered ${describeReply(r)}`;
}

/** A fresh probe key, its random part a Cluster hash tag (the slot is that of the random part). */
const probeKeyName = (): string => `tykdr:restore:set-probe:{${randomBytes(8).toString('hex')}}`;

/**
 * A probe key that the router sends to `lane` (on a Cluster, a key of a slot that master serves), or null when 64 random
 * ones all belong elsewhere (a master with very few slots: its strings then go in by RESTORE).
 */
export function probeKey(router: Pick<KeyRouter, 'laneOf'>, lane: number): Buffer | null {
  for (let i = 0; i < 64; i++) {
    const key = Buffer.from(probeKeyName());
    if (router.laneOf(lane, key) === lane) return key;
  }
  return null;
}

const describeReply = (r: RespReply | undefined): string => (Buffer.isBuffer(r) ? `"${r.toString('latin1', 0, 40)}"` : String(r));

/** A restored record's value as a string to SET, or null when it holds another type. */
function stringOf(rec: KeyRecord): StringWriter | null {
  if (rec instanceof LazyPayloadEntry) return rec.type === RDB_TYPE.STRING ? rec : null;
  return rec.payload[0] === RDB_TYPE.STRING ? new PayloadString(rec.payload) : null;
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
  let bySet = 0;
  let setRefused: string | undefined;
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
        // What the batch does, for messages: "SET and RESTORE keys on database 0 of host:port".
        const doing = `${l.set ? 'SET and RESTORE' : 'RESTORE'} keys on ${o.router.describe(lane)}`;
        let replies;
        try {
          replies = await l.pipe.exec(batch);
        } catch (err) {
          throw o.explain(err, doing);
        }
        for (const r of replies) if (r instanceof RespError) throw o.explain(new Error(r.message), doing);
        // Every reply is in: Redis has read the whole batch, so its memory can take the lane's next one.
        l.enc.recycle(batch);
      }),
    ).then(() => o.progress?.({ phase: 'restore', keys: done, totalKeys: o.totalRecords }));
    w.catch(() => undefined);
    inFlight.push(w);
  };

  // A lane's connection is opened, and probed for SET, when its first record comes: strings are encoded for it as SET
  // or RESTORE from then on.
  const openLane = async (lane: number): Promise<Lane> => {
    let pipe: RespPipe;
    try {
      pipe = await o.router.open(lane);
    } catch (err) {
      throw o.explain(err, `connect to ${o.router.describe(lane)}`);
    }
    const l: Lane = { enc: new CommandEncoder(), pipe, set: false };
    lanes.set(lane, l);
    if (o.setStrings) {
      const key = probeKey(o.router, lane);
      let refused: string | null;
      try {
        refused = key === null ? null : await setProbe(pipe, key);
      } catch (err) {
        throw o.explain(err, `try SET on ${o.router.describe(lane)}`);
      }
      l.set = key !== null && refused === null;
      if (key === null) setRefused ??= `${o.router.describe(lane)} serves too few slots to find a key to try SET with`;
      else if (refused !== null) setRefused ??= `${o.router.describe(lane)} answered ${refused}`;
    }
    return l;
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
        const l = lanes.get(lane) ?? (await openLane(lane));
        restored[cls]++;
        if (l.set) {
          // A string is decoded straight into the batch; one whose bytes do not decode goes in by RESTORE, which checks them.
          const value = stringOf(rec);
          if (value !== null && l.enc.set(rec.key, value, rec.expireAt < 0 ? 0 : rec.expireAt)) {
            bySet++;
            if (++pending >= o.batchSize) await flush();
            continue;
          }
        }
        const ttl = rec.expireAt < 0 ? 0 : o.absTtl ? rec.expireAt : Math.max(1, rec.expireAt - now);
        // A payload cut from an RDB is written straight into the batch (not built, then copied).
        l.enc.restore(rec.key, ttl, rec instanceof LazyPayloadEntry ? rec : rec.payload, o.absTtl);
        if (++pending >= o.batchSize) await flush();
      }
    }
    await flush();
    while (inFlight.length > 0) await inFlight.shift();
  } finally {
    for (const l of lanes.values()) l.pipe.close();
  }
  const durationMs = Date.now() - started;
  const total = Object.values(restored).reduce((a, b) => a + b, 0);
  return { restored, skipped, expired, bySet, ...(setRefused ? { setRefused } : {}), durationMs, keysPerSecond: durationMs > 0 ? Math.round((total * 1000) / durationMs) : total };
}
