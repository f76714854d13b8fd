import path from 'node:path';
import { TykdrError } from '../../../core/errors.js';
import { KEY_CLASSES, type KeyClass } from '../../../core/tyk/key-classes.js';
import { parseDuration } from '../../../core/duration.js';
import { copyKeys, type SampledKey } from './live-copy.js';
import { releaseAtLeast } from './rdb-versions.js';
import { swapRdbFile } from './rdb-file-swap.js';
import { Reservoir } from './reservoir.js';
import type { RedisRestoreInput } from './restore-redis.js';
import { checkDataDir, type TargetFacts } from './restore-preflight.js';
import { startScratch, type ScratchServer } from './scratch-server.js';
import { drawByScan, fingerprintSample, type SnapshotSample } from './snapshot-sample.js';
import { connectTarget, explainTargetError, keyspaceOf, openTargetPipe, probeTarget, readInfo, type RedisPool, type RestoreTarget } from './target-connection.js';

export interface ModeContext {
  input: RedisRestoreInput;
  target: RestoreTarget;
  pool: RedisPool;
  /** Null when an rdb-file target was down before the restore. */
  facts: TargetFacts | null;
  /** Keys to sample for redis-sample / redis-ttl (0: none). */
  sampleSize: number;
  details: Record<string, unknown>;
  warnings: string[];
}

export interface ModeResult {
  sample: SnapshotSample | null;
  /** Why no sample could be taken, when sampleSize > 0 and sample is null. */
  sampleSkipped?: string;
}

const ms = (d: string, fallback: number) => parseDuration(d) ?? fallback;

/** The `databases` a scratch server needs: one more than the highest index in the snapshot (at least 16). */
function databasesFor(input: RedisRestoreInput): number {
  const dbs = Object.keys((input.manifest.source.databases as Record<string, unknown> | undefined) ?? {}).map(Number);
  return Math.max(16, ...dbs.filter(Number.isFinite).map((d) => d + 1));
}

async function withScratch<T>(ctx: ModeContext, fn: (s: ScratchServer) => Promise<T>): Promise<T> {
  const { input } = ctx;
  const r = input.component.restore;
  input.progress?.({ phase: 'scratch-load' });
  const scratch = await startScratch({
    bin: r.redisServer,
    dir: path.join(input.workDir, 'scratch'),
    rdbFile: input.rdbFile,
    databases: databasesFor(input),
    loadTimeoutMs: ms(r.loadTimeout, 600_000),
    where: `components.${input.component.name}.restore`,
    signal: input.signal,
  });
  try {
    return await fn(scratch);
  } finally {
    await scratch.stop();
  }
}

async function scratchKeyspace(s: ScratchServer): Promise<{ dbs: number[]; total: number }> {
  const ks = keyspaceOf(await readInfo(await s.pool.db(0), 'keyspace'));
  return { dbs: [...ks.keys()].sort((a, b) => a - b), total: [...ks.values()].reduce((a, b) => a + b, 0) };
}

/**
 * Live mode: load the snapshot into a scratch server, copy the restored classes into the running target
 * (DUMP/RESTORE REPLACE ABSTTL), and fingerprint a random sample of what was copied before the scratch stops.
 */
export async function runLive(ctx: ModeContext): Promise<ModeResult> {
  const { input, target, details } = ctx;
  const r = input.component.restore;
  const classes = new Set<KeyClass>(r.classes);
  return withScratch(ctx, async (scratch) => {
    const { dbs, total } = await scratchKeyspace(scratch);
    const scratchPexpiretime = releaseAtLeast(scratch.version, 7);
    const drawn = new Reservoir<SampledKey>(ctx.sampleSize);
    details.scratch_redis_version = scratch.version;
    input.progress?.({ phase: 'copy', keys: 0, totalKeys: total });
    const res = await copyKeys({
      openScratch: (db) => scratch.openPipe(db, input.signal),
      openTarget: (db) => openTargetPipe(target, db, input.signal),
      dbs,
      classes,
      batchSize: r.batchSize,
      pexpiretime: scratchPexpiretime,
      absTtl: ctx.facts === null || releaseAtLeast(ctx.facts.version, 5),
      sample: ctx.sampleSize > 0 ? drawn : undefined,
      totalKeys: total,
      explain: (err, doing) => explainTargetError(err, target, doing),
      signal: input.signal,
      progress: input.progress,
    });
    const copied = Object.values(res.copied).reduce((a, b) => a + b, 0);
    Object.assign(details, {
      classes: [...classes],
      databases: dbs,
      snapshot_keys: total,
      keys_copied: copied,
      copied: res.copied,
      skipped: res.skipped,
      expired_before_copy: res.expired,
      scanned: res.scanned,
      copy_ms: res.durationMs,
      keys_per_second: res.keysPerSecond,
      batch_size: r.batchSize,
    });
    if (ctx.sampleSize === 0) return { sample: null };
    input.progress?.({ phase: 'sample' });
    return { sample: await fingerprintSample(scratch.pool, drawn, ctx.sampleSize, scratchPexpiretime, input.signal) };
  });
}

/**
 * rdb-file mode: sample the staged file in a scratch server (before it moves), then stop the target, put
 * the staged RDB in its data directory (the old one kept aside), start it and wait until it has loaded.
 */
export async function runRdbFile(ctx: ModeContext): Promise<ModeResult> {
  const { input, target, details, warnings } = ctx;
  const c = input.component;
  const r = c.restore;
  const where = `components.${c.name}.restore`;
  let result: ModeResult = { sample: null };
  if (ctx.sampleSize > 0) {
    try {
      result = await withScratch(ctx, async (scratch) => {
        const { dbs } = await scratchKeyspace(scratch);
        const drawn = await drawByScan(scratch.pool, dbs, new Set(KEY_CLASSES), ctx.sampleSize, input.signal);
        details.scratch_redis_version = scratch.version;
        return { sample: await fingerprintSample(scratch.pool, drawn, ctx.sampleSize, releaseAtLeast(scratch.version, 7), input.signal) };
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      // The sample is evidence, not the restore: without it the restore still runs, and the checks say why.
      result = { sample: null, sampleSkipped: `no scratch server could load the snapshot to sample it (${(err as Error).message})` };
    }
  }
  if (ctx.facts) {
    const warning = await checkDataDir(c, target, await ctx.pool.db(0), input.signal);
    if (warning) warnings.push(warning);
  }
  ctx.pool.close();
  const loadTimeoutMs = ms(r.loadTimeout, 600_000);
  const swap = await swapRdbFile({
    rdbFile: input.rdbFile,
    dataDir: r.dataDir!,
    dbfilename: r.dbfilename,
    stopCommand: r.stopCommand!,
    startCommand: r.startCommand!,
    where,
    display: target.display,
    stopTimeoutMs: loadTimeoutMs,
    loadTimeoutMs,
    probe: (signal) => probeTarget(target, signal),
    afterLoad: async () => {
      const client = await connectTarget(target, 0, input.signal);
      try {
        const info = await readInfo(client, 'persistence');
        if (info.aof_enabled === '1') {
          throw new TykdrError('targetError', `Redis at ${target.display} started with AOF enabled, so it loaded its append-only file instead of the restored ${r.dbfilename}`, {
            fix: `use ${where}.mode: live, or disable appendonly on the target before an rdb-file restore`,
          });
        }
      } finally {
        client.disconnect();
      }
    },
    signal: input.signal,
    progress: (phase) => input.progress?.({ phase }),
  });
  Object.assign(details, {
    previous_rdb: swap.previousFile,
    placed_by: swap.placedBy,
    stop_ms: swap.stopMs,
    start_ms: swap.startMs,
  });
  return result;
}
