import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import type { Reservoir } from './reservoir.js';
import { CommandEncoder, RespError, type RespPipe, type RespReply } from '../protocol/resp-pipe.js';
import { PayloadString } from '../formats/string-value.js';
import { setProbe } from './keys-restore.js';

/** A key chosen for value-by-value comparison after the restore. `key` is a credential: never print it. */
export interface SampledKey {
  db: number;
  key: Buffer;
  cls: KeyClass;
}

export interface LiveCopyOptions {
  /** Opens a pipe to the scratch server (holding the snapshot), on database `db`. */
  openScratch: (db: number) => Promise<RespPipe>;
  /** Opens a pipe to the target, on database `db`. */
  openTarget: (db: number) => Promise<RespPipe>;
  /** Database indexes that hold keys in the scratch server. */
  dbs: number[];
  classes: ReadonlySet<KeyClass>;
  batchSize: number;
  /** The scratch server has PEXPIRETIME (Redis 7.0+); else expiries are read as now + PTTL. */
  pexpiretime: boolean;
  /** The target accepts RESTORE ... ABSTTL (Redis 5.0+); else the TTL is sent relative. */
  absTtl: boolean;
  /** Strings go in as `SET key value [PXAT ms]` on each database's connection that takes it (keys-restore.ts setProbe). */
  setStrings?: boolean;
  /** Restored keys are offered to it, for redis-sample. */
  sample?: Reservoir<SampledKey>;
  /** Keys in the scratch server (all classes), for progress. */
  totalKeys: number;
  /** Turns a failure on the target into the error to throw (message names the target, never a key). */
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
  /** Keys SCAN returned (SCAN may return a key twice while a table grows; RESTORE REPLACE makes that harmless). */
  scanned: number;
  /** Of the copied keys, those written with SET (string values; the rest by RESTORE). */
  bySet: number;
  /** What a target connection answered when it would not take SET (strings then went in by RESTORE). */
  setRefused?: string;
  durationMs: number;
  keysPerSecond: number;
}

interface Counters {
  copied: Record<KeyClass, number>;
  skipped: Record<KeyClass, number>;
  expired: number;
  scanned: number;
  done: number;
  bySet: number;
  setRefused?: string;
}

/**
 * Copies every key of the restored classes from the scratch server to the target: SCAN, then pipelined
 * DUMP + PEXPIRETIME on the scratch, then pipelined `RESTORE key ttl payload REPLACE ABSTTL` on the target (a string
 * as `SET key value [PXAT ms]` where the target takes it: setStrings),
 * database by database. Batch n+1 (and the next SCAN page, in the same round trip) is read while batch n is
 * written, so at most two batches are held. Keys already copied stay copied when it fails; re-running is safe.
 */
export async function copyKeys(opts: LiveCopyOptions): Promise<LiveCopyResult> {
  const started = Date.now();
  const c: Counters = { copied: emptyClassCounts(), skipped: emptyClassCounts(), expired: 0, scanned: 0, done: 0, bySet: 0 };
  for (const db of opts.dbs) {
    const src = await opts.openScratch(db);
    let dst: RespPipe | undefined;
    try {
      dst = await opts.openTarget(db).catch((err: unknown) => {
        throw opts.explain(err, `select database ${db}`);
      });
      await copyDatabase(opts, db, src, dst, c);
    } finally {
      src.close();
      dst?.close();
    }
  }
  const durationMs = Date.now() - started;
  const total = Object.values(c.copied).reduce((a, b) => a + b, 0);
  return {
    copied: c.copied,
    skipped: c.skipped,
    expired: c.expired,
    scanned: c.scanned,
    bySet: c.bySet,
    ...(c.setRefused ? { setRefused: c.setRefused } : {}),
    durationMs,
    keysPerSecond: durationMs > 0 ? Math.round((total * 1000) / durationMs) : total,
  };
}

type ScanPage = [Buffer, Buffer[]];

function asScanPage(r: RespReply | undefined): ScanPage {
  if (r instanceof RespError) throw new Error(`SCAN on the scratch server failed: ${r.message}`);
  return r as ScanPage;
}

async function copyDatabase(opts: LiveCopyOptions, db: number, src: RespPipe, dst: RespPipe, c: Counters): Promise<void> {
  const count = String(opts.batchSize);
  const enc = new CommandEncoder();
  let useSet = false;
  if (opts.setStrings) {
    let refused: string | null;
    try {
      refused = await setProbe(dst);
    } catch (err) {
      throw opts.explain(err, `try SET on database ${db}`);
    }
    useSet = refused === null;
    if (refused !== null) c.setRefused ??= `database ${db} answered ${refused}`;
  }
  enc.command('SCAN', '0', 'COUNT', count);
  let page = asScanPage((await src.exec(enc.take()))[0]);
  let writing: Promise<void> = Promise.resolve();
  for (;;) {
    opts.signal?.throwIfAborted();
    const cursor = page[0].toString('latin1');
    const last = cursor === '0';
    const keys: Buffer[] = [];
    const classes: KeyClass[] = [];
    for (const k of page[1]) {
      c.scanned++;
      const cls = classifyKey(k);
      if (opts.classes.has(cls)) {
        keys.push(k);
        classes.push(cls);
      } else {
        c.skipped[cls]++;
      }
    }
    for (const k of keys) {
      enc.command('DUMP', k);
      enc.command(opts.pexpiretime ? 'PEXPIRETIME' : 'PTTL', k);
    }
    if (!last) enc.command('SCAN', cursor, 'COUNT', count);
    const replies = await src.exec(enc.take());
    const now = Date.now();
    for (let i = 0; i < keys.length; i++) {
      const payload = replies[2 * i];
      const t = replies[2 * i + 1];
      if (payload instanceof RespError || t instanceof RespError) {
        throw new Error(`reading the snapshot from the scratch server failed: ${(payload instanceof RespError ? payload : (t as RespError)).message}`);
      }
      const ttl = t as number;
      const expireAt = ttl < 0 ? 0 : opts.pexpiretime ? ttl : now + ttl;
      // A null DUMP or -2: the key expired in the scratch server after SCAN saw it.
      if (payload === null || ttl === -2 || (expireAt > 0 && expireAt <= now)) {
        c.expired++;
        continue;
      }
      // A string's DUMP payload (type byte 0) decoded into SET [PXAT]; one that does not decode goes by RESTORE, which checks it.
      if (useSet && (payload as Buffer)[0] === 0 && enc.set(keys[i]!, new PayloadString(payload as Buffer), expireAt)) {
        c.bySet++;
      } else {
        const sendTtl = opts.absTtl || expireAt === 0 ? expireAt : expireAt - now;
        if (opts.absTtl) enc.command('RESTORE', keys[i]!, String(sendTtl), payload as Buffer, 'REPLACE', 'ABSTTL');
        else enc.command('RESTORE', keys[i]!, String(sendTtl), payload as Buffer, 'REPLACE');
      }
      c.copied[classes[i]!]++;
      opts.sample?.offer({ db, key: Buffer.from(keys[i]!), cls: classes[i]! });
    }
    const batch = enc.take();
    const seen = page[1].length;
    await writing;
    const w = writeBatch(dst, batch, opts).then(() => {
      c.done += seen;
      opts.progress?.({ phase: 'copy', keys: c.done, totalKeys: opts.totalKeys });
    });
    w.catch(() => undefined);
    writing = w;
    if (last) break;
    page = asScanPage(replies[replies.length - 1]);
  }
  await writing;
}

async function writeBatch(dst: RespPipe, batch: { data: Buffer; count: number }, opts: LiveCopyOptions): Promise<void> {
  let replies: RespReply[];
  try {
    replies = await dst.exec(batch);
  } catch (err) {
    throw opts.explain(err, 'RESTORE keys');
  }
  for (const r of replies) if (r instanceof RespError) throw opts.explain(new Error(r.message), 'RESTORE keys');
}
