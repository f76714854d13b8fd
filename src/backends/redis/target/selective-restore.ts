import path from 'node:path';
import { checkResult } from '../../../core/checks/result.js';
import { parseDuration } from '../../../core/duration.js';
import { classifyKey, type KeyClass } from '../../../core/tyk/key-classes.js';
import { describeSelection, KeySelector, type KeySelection } from '../../../core/tyk/key-selection.js';
import type { KeyRecord } from '../formats/keys-reader.js';
import { releaseAtLeast } from '../formats/rdb-versions.js';
import type { ClusterTarget } from './cluster-target.js';
import type { KeysInspection, PayloadSampleEntry } from './keys-inspect.js';
import type { KeyRouter } from './keys-restore.js';
import { dumpWithExpiry, observePayloadSample, PayloadDecoder } from './keys-sample.js';
import { explainRestoreError } from './restore-keys-mode.js';
import { databasesFor, type ModeContext, type ModeResult } from './restore-modes.js';
import { Reservoir } from './reservoir.js';
import { startScratch, type ScratchServer } from './scratch-server.js';
import { isSingleFileEra } from './scratch-binary.js';
import { replaySegments } from '../pitr/replay.js';
import { TykdrError } from '../../../core/errors.js';
import type { FeedSegment } from '../../../core/interfaces/target.js';
import { countMissing, emptyTally, writeSelected, type SelectionTally } from './selective-write.js';
import { CommandEncoder, RespError, type RespPipe, type RespReply } from '../protocol/resp-pipe.js';
import { keyspaceOf, openTargetPipe, readInfo } from '../protocol/target-connection.js';

/** Names kept per list in the report (counts are always whole); a dry run keeps up to DRY_RUN_LIST_LIMIT. */
export const REPORT_LIST_LIMIT = 1000;
export const DRY_RUN_LIST_LIMIT = 100_000;

/** Where a selective restore reads the snapshot's keys from: opened once to write, once more to check. */
export interface SelectionSource {
  open(signal?: AbortSignal): AsyncIterable<KeyRecord[]>;
  /** Counts of what the source filtered out before handing records over (a scratch server's SCAN). */
  tally: SelectionTally;
  total?: number;
  close(): Promise<void>;
}

/**
 * A selective restore into a running target (rdb, keys and aof snapshots alike): the records of the
 * snapshot are streamed, the selection decides per key (name, and the decoded string value for --org or
 * --api on sessions), and only selected keys are written (selective-write.ts). Keys not selected are never
 * touched. An RDB or keys snapshot is read from the staged file (no scratch server); an AOF snapshot is
 * loaded in a scratch server and read with SCAN (names filtered first), DUMP and PEXPIRETIME.
 *
 * A point in time (input.feed, restore --to-time): the snapshot (an RDB, or an AOF) is loaded into a scratch
 * server and the staged feed replayed into it up to the point (replay.ts: SELECT, MULTI/EXEC, RENAME and
 * every other command as Redis ran it, expiries made absolute); the keys are then selected from the scratch
 * server, so the selection sees each key's value at that time (a session's org_id and access_rights), keys
 * the feed created, renamed or deleted included. Costs a scratch server holding the keyspace at that time.
 */
export async function runSelective(ctx: ModeContext, keys: KeysInspection | undefined, cluster: ClusterTarget | null, targetVersion: string | undefined, selection: KeySelection, dryRun: boolean): Promise<ModeResult> {
  const selector = new KeySelector(selection, ctx.input.component.restore.classes);
  const source: SelectionSource = keys && !ctx.input.feed
    ? { open: (s) => keys.open(s), tally: emptyTally(), total: keys.records, close: async () => undefined }
    : await scratchSource(ctx, selector);
  return selectiveRestore(ctx, source, selector, cluster, targetVersion, dryRun);
}

/** Writes (or, dry run, looks up) the selection from any source of key records; closes the source when done. */
export async function selectiveRestore(ctx: ModeContext, source: SelectionSource, selector: KeySelector, cluster: ClusterTarget | null, targetVersion: string | undefined, dryRun: boolean): Promise<ModeResult> {
  const { input, target, details } = ctx;
  const r = input.component.restore;
  const signal = input.signal;
  const selection = selector.selection;
  const router: KeyRouter = cluster
    ? { laneOf: (_db, key) => cluster.ownerOf(key), open: (lane) => cluster.pipe(lane, signal), describe: (lane) => cluster.node(lane).display }
    : { laneOf: (db) => db, open: (db) => openTargetPipe(target, db, signal), describe: (db) => `database ${db} of ${target.display}` };
  const explain = (err: unknown, doing: string) => explainRestoreError(err, target, doing);
  const drawn = new Reservoir<PayloadSampleEntry>(dryRun ? 0 : ctx.sampleSize);
  let decoder: PayloadDecoder | null = null;
  try {
    input.progress?.({ phase: dryRun ? 'select' : 'restore', keys: 0, totalKeys: source.total });
    const started = Date.now();
    const t = await writeSelected({
      records: source.open(signal),
      selector,
      dryRun,
      router,
      absTtl: targetVersion === undefined || releaseAtLeast(targetVersion, 5),
      batchSize: r.batchSize,
      listLimit: dryRun ? DRY_RUN_LIST_LIMIT : REPORT_LIST_LIMIT,
      tally: source.tally,
      sample: drawn,
      explain,
      signal,
      progress: input.progress,
      totalRecords: source.total,
    });
    details.selection = selectionDetails(selection, selector.restoredClasses, t, dryRun, dryRun ? DRY_RUN_LIST_LIMIT : REPORT_LIST_LIMIT);
    details.write_ms = Date.now() - started;
    if (dryRun) return { sample: null, cleanup: source.close };

    const pexpiretime = targetVersion === undefined || releaseAtLeast(targetVersion, 7);
    decoder = new PayloadDecoder(r.redisServer, input.workDir, `components.${input.component.name}.restore`, signal);
    const dec = decoder;
    const countsCheck = async () => {
      const started = Date.now();
      const again = t.remembered === null;
      const res = await countMissing({ records: again ? source.open(signal) : { remembered: t.remembered! }, selector, router, batchSize: r.batchSize, explain, signal });
      const evidence = {
        selected_live_keys: res.checked,
        missing: res.missing,
        keys_from: again ? 'the snapshot, read again' : 'the keys the restore wrote or kept',
        ...(res.missing ? { missing_examples: res.missingNames } : {}),
      };
      return res.missing === 0
        ? checkResult('redis-key-counts', 'passed', `selective restore: all ${res.checked} selected keys that have not expired are in the target (written ${t.written}, kept ${t.kept}); keys not selected were not touched`, evidence, started)
        : checkResult('redis-key-counts', 'failed', `selective restore: ${res.missing} of ${res.checked} selected keys are not in the target`, evidence, started);
    };
    return {
      sample: null,
      sampler: {
        summary: { requested: ctx.sampleSize, population: drawn.offered, expiredBeforeRead: 0 },
        observe: () =>
          observePayloadSample(
            drawn.items,
            async (db, key) => dumpWithExpiry(cluster ? await cluster.client(cluster.ownerOf(key), signal) : await ctx.pool.db(db), key, pexpiretime),
            dec,
            signal,
          ),
        notDecodedWhy: () => dec.unavailable ?? undefined,
      },
      countsCheck,
      cleanup: async () => {
        await dec.close();
        await source.close();
      },
    };
  } catch (err) {
    await decoder?.close().catch(() => undefined);
    await source.close().catch(() => undefined);
    throw err;
  }
}

/** The selection's part of the restore report: the filter, counts, and (truncated) name lists. */
function selectionDetails(s: KeySelection, classes: KeyClass[], t: SelectionTally, dryRun: boolean, limit: number): Record<string, unknown> {
  return {
    filter: { keys: s.patterns, classes, orgs: s.orgs, apis: s.apis, overwrite: s.overwrite },
    description: describeSelection(s),
    dry_run: dryRun,
    snapshot_keys: t.seen,
    selected: t.selected,
    [dryRun ? 'would_write' : 'written']: t.written,
    [dryRun ? 'would_replace' : 'replaced']: t.replaced,
    kept: t.kept,
    expired: t.expired,
    skipped_not_selected: Object.values(t.notSelected).reduce((a, b) => a + b, 0),
    skipped_per_class: t.notSelected,
    values_decoded: t.valuesDecoded,
    [dryRun ? 'would_write_keys' : 'written_keys']: t.writtenNames,
    kept_keys: t.keptNames,
    lists_truncated: t.writtenNames.length < t.written || t.keptNames.length < t.kept ? `lists hold the first ${limit} names; counts are complete` : false,
  };
}

/** An AOF snapshot loaded in a scratch server: SCAN, names filtered, then DUMP + expiry of the candidates. */
async function scratchSource(ctx: ModeContext, selector: KeySelector): Promise<SelectionSource> {
  const { input } = ctx;
  const r = input.component.restore;
  const feed = input.feed;
  if (!ctx.aof && !(feed && ctx.snapshot.format === 'rdb')) {
    throw new Error(feed ? `a point in time is replayed onto an RDB or AOF base, not a ${ctx.snapshot.format} snapshot` : 'selective restore: neither key records nor an AOF folder were staged');
  }
  input.progress?.({ phase: 'scratch-load' });
  const legacy = ctx.aof?.singleFile && ctx.scratchBin && isSingleFileEra(ctx.scratchBin) ? ctx.aof.manifest.base!.name : undefined;
  const scratch: ScratchServer = await startScratch({
    bin: ctx.scratchBin?.path ?? r.redisServer,
    dir: path.join(input.workDir, 'scratch'),
    ...(ctx.aof
      ? { aof: { folder: ctx.aof.folder, dirName: ctx.aof.dirName, appendfilename: ctx.aof.appendfilename, ...(legacy ? { singleFile: legacy } : {}) } }
      : { rdbFile: input.rdbFile }),
    databases: databasesFor(input),
    loadTimeoutMs: parseDuration(r.loadTimeout) ?? 600_000,
    where: `components.${input.component.name}.restore`,
    signal: input.signal,
  });
  try {
    if (feed) await replayIntoScratch(ctx, scratch, feed);
    const ks = keyspaceOf(await readInfo(await scratch.pool.db(0), 'keyspace'));
    const dbs = [...ks.keys()].sort((a, b) => a - b);
    const pexpiretime = releaseAtLeast(scratch.version, 7);
    ctx.details.scratch_redis_version = scratch.version;
    const tally = emptyTally();
    let counting = true;
    return {
      tally,
      total: [...ks.values()].reduce((a, b) => a + b, 0),
      open: (signal) => {
        // Only the first pass (the write) counts what SCAN filtered out; the check's pass reads again.
        const t = counting ? tally : emptyTally();
        counting = false;
        return scanRecords(scratch, dbs, selector, t, pexpiretime, r.batchSize, signal);
      },
      close: () => scratch.stop(),
    };
  } catch (err) {
    await scratch.stop();
    throw err;
  }
}

/** The point-in-time feed replayed into the scratch server; any refused command fails the restore (nothing was written yet). */
async function replayIntoScratch(ctx: ModeContext, scratch: ScratchServer, feed: FeedSegment[]): Promise<void> {
  const { input, details } = ctx;
  input.progress?.({ phase: 'replay' });
  const started = Date.now();
  const pipe = await scratch.openPipe(0, input.signal);
  let r;
  try {
    r = await replaySegments(pipe, feed, { signal: input.signal });
  } finally {
    pipe.close();
  }
  details.feed_replay = {
    into: 'scratch server',
    segments: feed.length,
    commands: r.commands,
    skipped: r.skipped,
    expiries_made_absolute: r.expiriesMadeAbsolute,
    errors: r.errors,
    replay_ms: Date.now() - started,
  };
  if (r.errors > 0) {
    throw new TykdrError('targetError', `${r.errors} of ${r.commands} replayed feed command(s) were refused by the scratch server (${r.firstErrors.join('; ')}); nothing was written to the target`, {
      fix: 'check that components.' + input.component.name + '.restore.redisServer is as new as the streamed server (or leave it at the default to have tykdr pick one)',
    });
  }
}

async function* scanRecords(scratch: ScratchServer, dbs: number[], selector: KeySelector, t: SelectionTally, pexpiretime: boolean, batchSize: number, signal?: AbortSignal): AsyncGenerator<KeyRecord[]> {
  const enc = new CommandEncoder();
  const fail = (r: RespReply | undefined, what: string) => {
    if (r instanceof RespError) throw new Error(`${what} on the scratch server failed: ${r.message}`);
  };
  for (const db of dbs) {
    const pipe: RespPipe = await scratch.openPipe(db, signal);
    try {
      let cursor = '0';
      do {
        signal?.throwIfAborted();
        enc.command('SCAN', cursor, 'COUNT', String(batchSize));
        const [page] = await pipe.exec(enc.take());
        fail(page, 'SCAN');
        const [next, names] = page as [Buffer, Buffer[]];
        cursor = next.toString('latin1');
        const candidates: Buffer[] = [];
        for (const k of names) {
          const cls = classifyKey(k);
          if (selector.byName(k, cls) === 'no') {
            t.seen++;
            t.notSelected[cls]++;
          } else candidates.push(k);
        }
        if (candidates.length === 0) continue;
        for (const k of candidates) {
          enc.command('DUMP', k);
          enc.command(pexpiretime ? 'PEXPIRETIME' : 'PTTL', k);
        }
        const replies = await pipe.exec(enc.take());
        const now = Date.now();
        const out: KeyRecord[] = [];
        candidates.forEach((key, i) => {
          const payload = replies[2 * i];
          const ttl = replies[2 * i + 1];
          fail(payload, 'DUMP');
          fail(ttl, 'PEXPIRETIME');
          // Gone since SCAN saw it (expired in the scratch server): counted as seen and expired.
          if (payload === null || ttl === -2) {
            t.seen++;
            t.expired++;
            return;
          }
          const n = ttl as number;
          out.push({ db, key, payload: payload as Buffer, expireAt: n < 0 ? -1 : pexpiretime ? n : now + n });
        });
        if (out.length > 0) yield out;
      } while (cursor !== '0');
    } finally {
      pipe.close();
    }
  }
}
