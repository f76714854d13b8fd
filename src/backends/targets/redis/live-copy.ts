import type { Redis } from 'ioredis';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import type { Reservoir } from './reservoir.js';
import type { RedisPool } from './target-connection.js';

/** A key chosen for value-by-value comparison after the restore. `key` is a credential: never print it. */
export interface SampledKey {
  db: number;
  key: Buffer;
  cls: KeyClass;
}

export interface LiveCopyOptions {
  /** The scratch server holding the snapshot. */
  scratch: RedisPool;
  target: RedisPool;
  /** Database indexes that hold keys in the scratch server. */
  dbs: number[];
  classes: ReadonlySet<KeyClass>;
  batchSize: number;
  /** The scratch server has PEXPIRETIME (Redis 7.0+); else expiries are read as now + PTTL. */
  pexpiretime: boolean;
  /** The target accepts RESTORE ... ABSTTL (Redis 5.0+); else the TTL is sent relative. */
  absTtl: boolean;
  /** Restored keys are offered to it, for redis-sample. */
  sample?: Reservoir<SampledKey>;
  /** Keys in the scratch server (all classes), for progress. */
  totalKeys: number;
  /** Turns a failed command on the target into the error to throw. */
  explain: (err: unknown, doing: string) => Error;
  signal?: AbortSignal;
  progress?: (e: { phase: string; keys?: number; totalKeys?: number }) => void;
}

export interface LiveCopyResult {
  copied: Record<KeyClass, number>;
  /** Keys left out because their class is not restored. */
  skipped: Record<KeyClass, number>;
  /** Keys of restored classes that expired (or vanished) before they could be copied. */
  expired: number;
  /** Keys SCAN returned (SCAN may return a key twice while the scratch's tables grow; RESTORE REPLACE makes that harmless). */
  scanned: number;
  durationMs: number;
  keysPerSecond: number;
}

type Reply = [Error | null, unknown];

interface Batch {
  keys: Buffer[];
  ttls: number[];
  payloads: Buffer[];
}

/**
 * Copies every key of the restored classes from the scratch server to the target: SCAN, then pipelined
 * DUMP + PEXPIRETIME on the scratch, then pipelined `RESTORE key ttl payload REPLACE ABSTTL` on the target,
 * database by database. The next batch is read while the previous one is written, so at most two batches
 * are held (plus one SCAN reply). Keys already copied stay copied when it fails: re-running is safe.
 */
export async function copyKeys(opts: LiveCopyOptions): Promise<LiveCopyResult> {
  const started = Date.now();
  const copied = emptyClassCounts();
  const skipped = emptyClassCounts();
  const count = { expired: 0, scanned: 0, done: 0 };
  for (const db of opts.dbs) {
    const src = await opts.scratch.db(db);
    const dst = await opts.target.db(db).catch((err: unknown) => {
      throw opts.explain(err, `select database ${db}`);
    });
    await copyDatabase(opts, db, src, dst, copied, skipped, count);
  }
  const durationMs = Date.now() - started;
  const total = Object.values(copied).reduce((a, b) => a + b, 0);
  return {
    copied,
    skipped,
    expired: count.expired,
    scanned: count.scanned,
    durationMs,
    keysPerSecond: durationMs > 0 ? Math.round((total * 1000) / durationMs) : total,
  };
}

async function copyDatabase(
  opts: LiveCopyOptions,
  db: number,
  src: Redis,
  dst: Redis,
  copied: Record<KeyClass, number>,
  skipped: Record<KeyClass, number>,
  count: { expired: number; scanned: number; done: number },
): Promise<void> {
  const countArg = String(opts.batchSize);
  let scan = (await src.callBuffer('SCAN', '0', 'COUNT', countArg)) as [Buffer, Buffer[]];
  let writing: Promise<void> = Promise.resolve();
  for (;;) {
    opts.signal?.throwIfAborted();
    const cursor = scan[0].toString('latin1');
    const last = cursor === '0';
    const keys: Buffer[] = [];
    const classes: KeyClass[] = [];
    for (const k of scan[1]) {
      count.scanned++;
      const cls = classifyKey(k);
      if (opts.classes.has(cls)) {
        keys.push(k);
        classes.push(cls);
      } else {
        skipped[cls]++;
      }
    }
    // One round trip reads this batch and the next SCAN page.
    const p = src.pipeline();
    for (const k of keys) {
      p.dumpBuffer(k);
      if (opts.pexpiretime) p.pexpiretime(k);
      else p.pttl(k);
    }
    if (!last) p.callBuffer('SCAN', cursor, 'COUNT', countArg);
    const replies = (keys.length > 0 || !last ? await p.exec() : []) as Reply[];
    const now = Date.now();
    const batch: Batch = { keys: [], ttls: [], payloads: [] };
    for (let i = 0; i < keys.length; i++) {
      const [dumpErr, payload] = replies[2 * i]!;
      const [ttlErr, t] = replies[2 * i + 1]!;
      if (dumpErr || ttlErr) throw dumpErr ?? ttlErr;
      const ttl = Number(t);
      let expireAt = 0;
      if (ttl >= 0) expireAt = opts.pexpiretime ? ttl : now + ttl;
      // -2 (gone) or a null DUMP: the key expired in the scratch server since SCAN saw it.
      if (payload === null || ttl === -2 || (expireAt > 0 && expireAt <= now)) {
        count.expired++;
        continue;
      }
      const sendTtl = opts.absTtl ? expireAt : expireAt === 0 ? 0 : expireAt - now;
      batch.keys.push(keys[i]!);
      batch.ttls.push(sendTtl);
      batch.payloads.push(payload as Buffer);
      copied[classes[i]!]++;
      opts.sample?.offer({ db, key: keys[i]!, cls: classes[i]! });
    }
    await writing;
    const seen = scan[1].length;
    const w = writeBatch(dst, batch, opts);
    w.catch(() => undefined);
    writing = w.then(() => {
      count.done += seen;
      opts.progress?.({ phase: 'copy', keys: count.done, totalKeys: opts.totalKeys });
    });
    writing.catch(() => undefined);
    if (last) break;
    const next = replies[replies.length - 1]!;
    if (next[0]) throw next[0];
    scan = next[1] as [Buffer, Buffer[]];
  }
  await writing;
}

async function writeBatch(dst: Redis, batch: Batch, opts: LiveCopyOptions): Promise<void> {
  if (batch.keys.length === 0) return;
  const p = dst.pipeline();
  for (let i = 0; i < batch.keys.length; i++) {
    if (opts.absTtl) p.restore(batch.keys[i]!, batch.ttls[i]!, batch.payloads[i]!, 'REPLACE', 'ABSTTL');
    else p.restore(batch.keys[i]!, batch.ttls[i]!, batch.payloads[i]!, 'REPLACE');
  }
  let replies: Reply[];
  try {
    replies = (await p.exec()) as Reply[];
  } catch (err) {
    throw opts.explain(err, 'RESTORE keys');
  }
  for (const [err] of replies) if (err) throw opts.explain(err, 'RESTORE keys');
}
