import { createHash } from 'node:crypto';
import type { KeyRecord } from '../formats/keys-reader.js';
import { stringValueOf } from '../formats/string-value.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import { displayKeyName, MAX_DECIDING_VALUE, type KeySelector } from '../../../core/tyk/key-selection.js';
import type { KeyRouter } from './keys-restore.js';
import { payloadType, type PayloadSampleEntry } from './keys-inspect.js';
import type { Reservoir } from './reservoir.js';
import { MAX_COMPARED_BYTES } from './value-fingerprint.js';
import { CommandEncoder, RespError, type RespPipe, type RespReply } from '../protocol/resp-pipe.js';

/** What a selective restore did (or, dry run, would do). Names are display names (displayKeyName). */
export interface SelectionTally {
  /** Records read from the snapshot. */
  seen: number;
  /** Records the selection picked (expired ones included). */
  selected: number;
  /** Written into the target (dry run: would be written). */
  written: number;
  /** Of those, keys the target held before (overwrite only: replaced). */
  replaced: number;
  /** Selected keys the target already held, left as they were (no-overwrite). */
  kept: number;
  /** Selected keys whose expiry had passed: not written. */
  expired: number;
  /** Records not selected, per class: never touched. */
  notSelected: Record<KeyClass, number>;
  /** String values decoded to decide on --org/--api. */
  valuesDecoded: number;
  writtenNames: string[];
  keptNames: string[];
  /**
   * The selected keys that were live when written, for the check afterwards (no second read of the
   * snapshot); null once they would take more than REMEMBERED_KEY_BYTES (the check then reads again).
   */
  remembered: Array<{ db: number; key: Buffer; expireAt: number }> | null;
  rememberedBytes: number;
}

/** Key bytes a selective restore holds to check its keys afterwards without reading the snapshot again. */
export const REMEMBERED_KEY_BYTES = 16 * 1024 * 1024;

export function emptyTally(): SelectionTally {
  return {
    seen: 0, selected: 0, written: 0, replaced: 0, kept: 0, expired: 0, notSelected: emptyClassCounts(), valuesDecoded: 0,
    writtenNames: [], keptNames: [], remembered: [], rememberedBytes: 0,
  };
}

/** Decides one record: the name first; the string value only when the name does not tell (--org/--api on sessions). */
export function isSelected(selector: KeySelector, rec: KeyRecord, cls: KeyClass, tally?: SelectionTally): boolean {
  const v = selector.byName(rec.key, cls);
  if (v !== 'value') return v === 'yes';
  if (tally) tally.valuesDecoded++;
  return selector.byValue(rec.key, stringValueOf(rec.payload, MAX_DECIDING_VALUE));
}

export interface SelectiveWriteOptions {
  records: AsyncIterable<KeyRecord[]>;
  selector: KeySelector;
  /** Decide and look (EXISTS), write nothing. */
  dryRun: boolean;
  router: KeyRouter;
  /** The target accepts RESTORE ... ABSTTL (Redis 5.0+). */
  absTtl: boolean;
  batchSize: number;
  /** Names kept per list (written, kept); counts are always whole. */
  listLimit: number;
  /** Counts made before the records reached here (a scratch server's SCAN filters names first). */
  tally?: SelectionTally;
  /** Written keys are offered to it, for redis-sample (never kept keys: they differ on purpose). */
  sample?: Reservoir<PayloadSampleEntry>;
  explain: (err: unknown, doing: string) => Error;
  signal?: AbortSignal;
  progress?: (e: { phase: string; keys?: number; totalKeys?: number }) => void;
  totalRecords?: number;
}

interface Pending {
  rec: KeyRecord;
  cls: KeyClass;
}

interface Lane {
  enc: CommandEncoder;
  recs: Pending[];
  pipe: Promise<RespPipe> | null;
}

const BUSYKEY = /^BUSYKEY/;

/**
 * Writes the selected records into the target, one pipelined batch at a time (a selective restore is
 * small by nature; memory is one batch):
 *   no-overwrite  RESTORE key ttl payload ABSTTL (no REPLACE): Redis answers BUSYKEY for a key it holds,
 *                 which is then kept and listed. Atomic per key: a key created meanwhile is never replaced.
 *   overwrite     EXISTS key, RESTORE ... REPLACE ABSTTL: written, and counted as replaced when it existed.
 *   dry run       EXISTS key only.
 * Records not selected are never sent. Expired records are not written (a past ABSTTL would delete the key).
 */
export async function writeSelected(o: SelectiveWriteOptions): Promise<SelectionTally> {
  const t = o.tally ?? emptyTally();
  const overwrite = o.selector.selection.overwrite;
  const lanes = new Map<number, Lane>();
  let pending = 0;

  const flush = async () => {
    pending = 0;
    for (const [lane, l] of lanes) {
      if (l.recs.length === 0) continue;
      const batch = l.enc.take();
      const recs = l.recs;
      l.recs = [];
      let pipe: RespPipe;
      try {
        pipe = await (l.pipe ??= o.router.open(lane));
      } catch (err) {
        throw o.explain(err, `connect to ${o.router.describe(lane)}`);
      }
      let replies: RespReply[];
      try {
        replies = await pipe.exec(batch);
      } catch (err) {
        throw o.explain(err, `RESTORE keys on ${o.router.describe(lane)}`);
      }
      const per = o.dryRun || !overwrite ? 1 : 2;
      recs.forEach((p, i) => account(p, replies.slice(i * per, i * per + per), lane));
    }
    o.progress?.({ phase: o.dryRun ? 'select' : 'restore', keys: t.seen, totalKeys: o.totalRecords });
  };

  const account = (p: Pending, r: RespReply[], lane: number) => {
    const bad = r.find((x) => x instanceof RespError && !(BUSYKEY.test(x.message) && !overwrite && !o.dryRun)) as RespError | undefined;
    if (bad) throw o.explain(new Error(bad.message), `${o.dryRun ? 'look up' : 'RESTORE'} keys on ${o.router.describe(lane)}`);
    const existed = o.dryRun || overwrite ? r[0] === 1 : r[0] instanceof RespError;
    if (existed && !overwrite) {
      t.kept++;
      if (t.keptNames.length < o.listLimit) t.keptNames.push(displayKeyName(p.rec.key));
      return;
    }
    t.written++;
    if (existed) t.replaced++;
    if (t.writtenNames.length < o.listLimit) t.writtenNames.push(displayKeyName(p.rec.key));
    if (!o.dryRun) {
      const { rec, cls } = p;
      o.sample?.offerLazy(() => ({
        db: rec.db,
        key: Buffer.from(rec.key),
        cls,
        expiresAtMs: rec.expireAt < 0 ? null : rec.expireAt,
        type: payloadType(rec.payload),
        bytes: rec.payload.length,
        sha256: createHash('sha256').update(rec.payload).digest('hex'),
        payload: rec.payload.length <= MAX_COMPARED_BYTES ? Buffer.from(rec.payload) : null,
      }));
    }
  };

  try {
    for await (const records of o.records) {
      o.signal?.throwIfAborted();
      const now = Date.now();
      for (const rec of records) {
        t.seen++;
        const cls = classifyKey(rec.key);
        if (!isSelected(o.selector, rec, cls, t)) {
          t.notSelected[cls]++;
          continue;
        }
        t.selected++;
        if (rec.expireAt >= 0 && rec.expireAt <= now) {
          t.expired++;
          continue;
        }
        const lane = o.router.laneOf(rec.db, rec.key);
        let l = lanes.get(lane);
        if (!l) lanes.set(lane, (l = { enc: new CommandEncoder(), recs: [], pipe: null }));
        const ttl = rec.expireAt < 0 ? 0 : o.absTtl ? rec.expireAt : Math.max(1, rec.expireAt - now);
        const abs = o.absTtl ? ['ABSTTL'] : [];
        if (o.dryRun) l.enc.command('EXISTS', rec.key);
        else if (overwrite) {
          l.enc.command('EXISTS', rec.key);
          l.enc.command('RESTORE', rec.key, String(ttl), rec.payload, 'REPLACE', ...abs);
        } else l.enc.command('RESTORE', rec.key, String(ttl), rec.payload, ...abs);
        l.recs.push({ rec, cls });
        if (t.remembered) {
          t.rememberedBytes += rec.key.length + 64;
          if (t.rememberedBytes > REMEMBERED_KEY_BYTES) t.remembered = null;
          else t.remembered.push({ db: rec.db, key: Buffer.from(rec.key), expireAt: rec.expireAt });
        }
        if (++pending >= o.batchSize) await flush();
      }
    }
    await flush();
  } finally {
    for (const l of lanes.values()) l.pipe?.then((p) => p.close(), () => undefined);
  }
  return t;
}

/**
 * The check after a selective restore: every selected key that has not expired by now is in the target
 * (written, or kept). Reads the selection again from the snapshot and asks EXISTS, pipelined.
 */
export async function countMissing(o: Pick<SelectiveWriteOptions, 'selector' | 'router' | 'batchSize' | 'explain' | 'signal'> & {
  /** The snapshot's records again, or (remembered) the selected keys as the write saw them: no need to select again. */
  records: AsyncIterable<KeyRecord[]> | { remembered: Array<{ db: number; key: Buffer; expireAt: number }> };
}): Promise<{ checked: number; missing: number; missingNames: string[] }> {
  const lanes = new Map<number, { enc: CommandEncoder; keys: Buffer[]; pipe: Promise<RespPipe> | null }>();
  let checked = 0;
  let missing = 0;
  const missingNames: string[] = [];
  let pending = 0;
  const flush = async () => {
    pending = 0;
    for (const [lane, l] of lanes) {
      if (l.keys.length === 0) continue;
      const keys = l.keys;
      l.keys = [];
      let replies: RespReply[];
      try {
        replies = await (await (l.pipe ??= o.router.open(lane))).exec(l.enc.take());
      } catch (err) {
        throw o.explain(err, `look up the restored keys on ${o.router.describe(lane)}`);
      }
      replies.forEach((r, i) => {
        if (r === 1) return;
        missing++;
        if (missingNames.length < 20) missingNames.push(displayKeyName(keys[i]!));
      });
    }
  };
  const remembered = 'remembered' in o.records ? o.records.remembered : null;
  const batches: AsyncIterable<Array<{ db: number; key: Buffer; expireAt: number; payload?: Buffer }>> = remembered
    ? (async function* () {
        for (let i = 0; i < remembered.length; i += 1000) yield remembered.slice(i, i + 1000);
      })()
    : (o.records as AsyncIterable<KeyRecord[]>);
  try {
    for await (const records of batches) {
      o.signal?.throwIfAborted();
      // A key may expire between the write and this check: only those still live a second from now count.
      const now = Date.now() + 1000;
      for (const rec of records) {
        if (!remembered && !isSelected(o.selector, rec as KeyRecord, classifyKey(rec.key))) continue;
        if (rec.expireAt >= 0 && rec.expireAt <= now) continue;
        const lane = o.router.laneOf(rec.db, rec.key);
        let l = lanes.get(lane);
        if (!l) lanes.set(lane, (l = { enc: new CommandEncoder(), keys: [], pipe: null }));
        l.enc.command('EXISTS', rec.key);
        l.keys.push(rec.key);
        checked++;
        if (++pending >= o.batchSize) await flush();
      }
    }
    await flush();
  } finally {
    for (const l of lanes.values()) l.pipe?.then((p) => p.close(), () => undefined);
  }
  return { checked, missing, missingNames };
}
