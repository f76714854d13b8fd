import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { badInput, TykdrError } from '../../../core/errors.js';
import { KEY_CLASSES, type KeyClass } from '../../../core/tyk/key-classes.js';
import { parseDuration } from '../../../core/duration.js';
import type { SampleObservation } from './redis-checks.js';
import type { StagedAof } from './aof-staging.js';
import { expectationFromServer, type KeyExpectation } from './key-expectation.js';
import { copyKeys, type SampledKey } from './live-copy.js';
import { releaseAtLeast } from '../formats/rdb-versions.js';
import { swapRdbFile, type RdbSwapOptions } from './rdb-file-swap.js';
import { Reservoir } from './reservoir.js';
import { isSingleFileEra, type ServerBinary } from './scratch-binary.js';
import type { RedisRestoreInput } from './restore-types.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { checkAofTarget, checkDataDir, type SnapshotVersion, type TargetFacts } from './restore-preflight.js';
import { startScratch, type ScratchOptions, type ScratchServer } from './scratch-server.js';
import type { RdbEvidence } from './keys-inspect.js';
import { dumpWithExpiry, observePayloadSample, PayloadDecoder } from './keys-sample.js';
import { drawByScan, fingerprintSample, type SnapshotSample } from './snapshot-sample.js';
import { connectTarget, explainTargetError, keyspaceOf, openTargetPipe, probeTarget, readInfo, type RedisPool, type RestoreTarget } from '../protocol/target-connection.js';

export interface ModeContext {
  input: RedisRestoreInput;
  target: RestoreTarget;
  pool: RedisPool;
  /** Null when a file-mode target was down before the restore. */
  facts: TargetFacts | null;
  /** Keys to sample for redis-sample / redis-ttl (0: none). */
  sampleSize: number;
  details: Record<string, unknown>;
  warnings: string[];
  snapshot: SnapshotVersion;
  /** Format aof: the unpacked and checked folder. */
  aof?: StagedAof;
  /** redis-key-counts was asked for and the mode must supply the expectation (format aof: read in a scratch server). */
  wantExpectation: boolean;
  /** The scratch server's binary, when restore-redis.ts chose one (else restore.redisServer as configured). */
  scratchBin?: ServerBinary;
  /**
   * rdb-file mode: the staged RDB's own reading (expectation and payload sample), its file opened before the swap and
   * read while the target loads (beginEvidence); replaces the scratch server.
   */
  rdbEvidence?: Promise<RdbEvidence>;
  /** Begins a deferred rdbEvidence read (rdb-file: once the file is in place, before the start command). */
  beginEvidence?: () => void;
}

/** The target's side of a sample, for modes that compare differently from the RDB/AOF fingerprints (keys). */
export interface Sampler {
  summary: Pick<SnapshotSample, 'requested' | 'population' | 'expiredBeforeRead'>;
  observe(): Promise<SampleObservation[]>;
  /** Why some values could only be compared by type. */
  notDecodedWhy(): string | undefined;
}

export interface ModeResult {
  /** Values of sampled keys as the snapshot holds them, read before the target changed (rdb, aof). */
  sample: SnapshotSample | null;
  /** Keys mode: its own sampler. */
  sampler?: Sampler;
  /** Why no sample could be taken, when sampleSize > 0 and there is none. */
  sampleSkipped?: string;
  /** The expectation for redis-key-counts when the mode built it. */
  expectation?: KeyExpectation | null;
  /** Why there is no expectation although one was wanted (redis-key-counts then compares with the manifest's INFO counts). */
  expectationSkipped?: string;
  /** rdb-file: the target loaded the very file the expectation was read from (redis-key-counts may count with DBSIZE). */
  loadedFile?: boolean;
  /** restore.load replication: the target loaded the staged RDB whole as a replica (expired keys too, until Redis evicts them). */
  loadedByReplication?: boolean;
  /** Runs after the checks (e.g. stops a scratch server the sampler uses). */
  cleanup?: () => Promise<void>;
  /** A selective restore's redis-key-counts (the selected keys are in the target), instead of whole-keyspace counts. */
  countsCheck?: () => Promise<CheckResult>;
}

const ms = (d: string, fallback: number) => parseDuration(d) ?? fallback;

/** The `databases` a scratch server needs: one more than the highest index in the snapshot (at least 16, or the source's setting). */
export function databasesFor(input: RedisRestoreInput): number {
  const dbs = Object.keys((input.manifest.source.databases as Record<string, unknown> | undefined) ?? {}).map(Number);
  const setting = Number(input.manifest.source.databases_setting ?? 0);
  return Math.max(16, Number.isFinite(setting) ? setting : 0, ...dbs.filter(Number.isFinite).map((d) => d + 1));
}

async function withScratch<T>(ctx: ModeContext, fn: (s: ScratchServer) => Promise<T>): Promise<T> {
  const { input } = ctx;
  const r = input.component.restore;
  input.progress?.({ phase: 'scratch-load' });
  const a = ctx.aof;
  // A Redis < 7 scratch loads one AOF file: the single-file snapshot's base (the chooser never gives it a multi-part folder).
  const legacy = a !== undefined && ctx.scratchBin !== undefined && isSingleFileEra(ctx.scratchBin);
  if (legacy && !a.singleFile) {
    throw badInput(`${ctx.scratchBin!.product} ${ctx.scratchBin!.version} (${ctx.scratchBin!.path}) cannot load a multi-part AOF folder`, `set components.${input.component.name}.restore.redisServer to Redis 7.0 or later, or Valkey`);
  }
  const load: Pick<ScratchOptions, 'rdbFile' | 'aof'> = a
    ? { aof: { folder: a.folder, dirName: a.dirName, appendfilename: a.appendfilename, ...(legacy ? { singleFile: a.manifest.base!.name } : {}) } }
    : { rdbFile: input.rdbFile };
  const scratch = await startScratch({
    bin: ctx.scratchBin?.path ?? r.redisServer,
    dir: path.join(input.workDir, 'scratch'),
    ...load,
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
 * Live mode (RDB or AOF snapshot): load the snapshot into a scratch server, copy the restored classes into
 * the running target (DUMP/RESTORE REPLACE ABSTTL), and fingerprint a random sample of what was copied
 * before the scratch stops. For an AOF snapshot the expectation is read from the scratch server too.
 */
export async function runLive(ctx: ModeContext): Promise<ModeResult> {
  const { input, target, details } = ctx;
  const r = input.component.restore;
  const classes = new Set<KeyClass>(r.classes);
  return withScratch(ctx, async (scratch) => {
    const { dbs, total } = await scratchKeyspace(scratch);
    const scratchPexpiretime = releaseAtLeast(scratch.version, 7);
    const expectation = ctx.aof && ctx.wantExpectation ? await expectationFromServer((db) => scratch.openPipe(db, input.signal), dbs, scratchPexpiretime, input.signal) : undefined;
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
      setStrings: true,
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
      keys_written_with_set: res.bySet,
      ...(res.setRefused ? { set_not_used: res.setRefused } : {}),
      scanned: res.scanned,
      copy_ms: res.durationMs,
      keys_per_second: res.keysPerSecond,
      batch_size: r.batchSize,
    });
    if (ctx.sampleSize === 0) return { sample: null, expectation };
    input.progress?.({ phase: 'sample' });
    return { sample: await fingerprintSample(scratch.pool, drawn, ctx.sampleSize, scratchPexpiretime, input.signal), expectation };
  });
}

/**
 * Before a file-level restore: load the staged snapshot in a scratch server (the target is not touched yet)
 * to draw the sample, and for an AOF snapshot to count what the target must hold afterwards. A scratch
 * server that cannot run only costs the evidence: the checks then say why.
 */
async function evidenceFromScratch(ctx: ModeContext): Promise<ModeResult> {
  const { input, details } = ctx;
  const needExpectation = ctx.aof !== undefined && ctx.wantExpectation;
  if (ctx.sampleSize === 0 && !needExpectation) return { sample: null };
  try {
    return await withScratch(ctx, async (scratch) => {
      const { dbs } = await scratchKeyspace(scratch);
      const pexpiretime = releaseAtLeast(scratch.version, 7);
      details.scratch_redis_version = scratch.version;
      const expectation = needExpectation ? await expectationFromServer((db) => scratch.openPipe(db, input.signal), dbs, pexpiretime, input.signal) : undefined;
      if (ctx.sampleSize === 0) return { sample: null, expectation };
      const drawn = await drawByScan(scratch.pool, dbs, new Set(KEY_CLASSES), ctx.sampleSize, input.signal);
      return { sample: await fingerprintSample(scratch.pool, drawn, ctx.sampleSize, pexpiretime, input.signal), expectation };
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    // The sample is evidence, not the restore: without it the restore still runs, and the checks say why.
    const why = `no scratch server could load the snapshot (${(err as Error).message})`;
    ctx.warnings.push(`${why}: redis-sample is skipped${needExpectation ? ' and redis-key-counts compares with the key counts Redis reported at backup time' : ''}`);
    return { sample: null, sampleSkipped: why, ...(needExpectation ? { expectationSkipped: why } : {}) };
  }
}

/**
 * rdb-file and aof-file modes: gather the evidence from a scratch server, then stop the target, put the
 * staged RDB (or AOF folder) in its data directory (the old one kept aside), start it and wait until it
 * has loaded: from the RDB with AOF off, or from the AOF (aof_enabled:1, the snapshot's appendfilename).
 */
export async function runFileMode(ctx: ModeContext): Promise<ModeResult> {
  const { input, target, details, warnings } = ctx;
  const c = input.component;
  const r = c.restore;
  const where = `components.${c.name}.restore`;
  const aof = ctx.aof;
  const early = ctx.rdbEvidence ? null : await evidenceFromScratch(ctx);
  let destName = r.dbfilename;
  // Redis < 7 keeps one AOF file (no appenddirname): a single-file snapshot's base is placed as that file.
  const legacyTarget = aof !== undefined && ctx.facts !== null && !releaseAtLeast(ctx.facts.version, 7);
  if (legacyTarget) {
    const at = `target ${ctx.facts!.name ?? `Redis ${ctx.facts!.version}`} at ${target.display}`;
    if (!aof.singleFile) {
      throw new TykdrError('targetError', `${at} keeps a single-file AOF (Redis before 7.0): it cannot load this snapshot's multi-part AOF folder (written by ${ctx.snapshot.writtenBy}). Nothing was changed`, {
        fix: `restore into Redis 7.0 or later or Valkey (set ${where}.target), or use ${where}.mode: live`,
      });
    }
    const client = await ctx.pool.db(0);
    const get = async (name: string) => ((await client.config('GET', name).catch(() => [])) as string[])[1];
    const dir = await get('dir');
    const real = async (p: string) => realpath(p).catch(() => p);
    if (dir && (await real(dir)) !== (await real(r.dataDir!))) {
      throw badInput(`${where}.dataDir is ${r.dataDir}, but Redis at ${target.display} keeps its data in ${dir} (CONFIG GET dir)`, `set ${where}.dataDir to ${dir}`);
    }
    destName = (await get('appendfilename')) || aof.appendfilename;
  } else if (ctx.facts) {
    const client = await ctx.pool.db(0);
    if (aof) {
      const checked = await checkAofTarget(c, target, client, aof, input.signal);
      destName = checked.dirName;
      if (checked.warning) warnings.push(checked.warning);
    } else {
      const warning = await checkDataDir(c, target, client, input.signal);
      if (warning) warnings.push(warning);
    }
  } else if (aof) {
    destName = r.appendDirName ?? aof.dirName;
  }
  ctx.pool.close();
  const loadTimeoutMs = ms(r.loadTimeout, 600_000);
  const swapOpts: RdbSwapOptions = {
    staged: legacyTarget ? path.join(aof!.folder, aof!.manifest.base!.name) : aof ? aof.folder : input.rdbFile,
    kind: aof && !legacyTarget ? 'folder' : 'file',
    dataDir: r.dataDir!,
    destName,
    stopCommand: r.stopCommand!,
    startCommand: r.startCommand!,
    where,
    display: target.display,
    stopTimeoutMs: loadTimeoutMs,
    loadTimeoutMs,
    probe: (signal) => probeTarget(target, signal),
    beforeStart: () => ctx.beginEvidence?.(),
    afterLoad: () => checkLoaded(ctx, destName, legacyTarget),
    signal: input.signal,
    progress: (phase) => input.progress?.({ phase }),
  };
  const swap = await swapRdbFile(swapOpts);
  const result = early ?? (await evidenceFromStaged(ctx, ctx.rdbEvidence!));
  Object.assign(details, {
    [aof ? 'previous_aof_dir' : 'previous_rdb']: swap.previousFile,
    ...(aof ? { [legacyTarget ? 'appendfilename' : 'appenddirname']: destName, aof_commands: aof.commands, aof_bytes: aof.bytes } : {}),
    placed_by: swap.placedBy,
    ...(swap.wasDown ? { target_was_down: true } : {}),
    stop_ms: swap.stopMs,
    start_ms: swap.startMs,
  });
  return result;
}

/**
 * rdb-file mode's evidence from the staged RDB itself (read while the target loaded it): the expectation for
 * redis-key-counts, and a sample of cut DUMP payloads compared with DUMP on the target afterwards (equal bytes
 * are equal values; different bytes are decoded in a small empty scratch server, as for keys mode). A failed
 * read only costs the evidence (Redis checked the file's CRC-64 as it loaded it): the checks then say why.
 */
export async function evidenceFromStaged(ctx: ModeContext, evidence: Promise<RdbEvidence>): Promise<ModeResult> {
  const { input } = ctx;
  let keys: RdbEvidence;
  // Begun already (before the start command) on every path here; once more costs nothing and never leaves it waiting.
  ctx.beginEvidence?.();
  try {
    keys = await evidence;
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    const why = `the staged RDB could not be read for the evidence (${(err as Error).message.split('\n')[0]})`;
    ctx.warnings.push(`${why}: redis-sample is skipped and redis-key-counts compares with the key counts Redis reported at backup time`);
    return { sample: null, sampleSkipped: why, expectationSkipped: why };
  }
  ctx.details.evidence_from = 'staged RDB';
  if (!keys.sample || ctx.sampleSize === 0) return { sample: null, expectation: keys.expectation, loadedFile: true };
  const sample = keys.sample;
  const signal = input.signal;
  const decoder = new PayloadDecoder(input.component.restore.redisServer, input.workDir, `components.${input.component.name}.restore`, signal);
  let pexpiretime: Promise<boolean> | null = null;
  const hasPexpiretime = async () => releaseAtLeast((await readInfo(await ctx.pool.db(0), 'server')).redis_version, 7);
  return {
    sample: null,
    expectation: keys.expectation,
    loadedFile: true,
    sampler: {
      summary: sample,
      observe: async () => {
        const pt = await (pexpiretime ??= hasPexpiretime());
        return observePayloadSample(sample.entries, async (db, key) => dumpWithExpiry(await ctx.pool.db(db), key, pt), decoder, signal);
      },
      notDecodedWhy: () => decoder.unavailable ?? undefined,
    },
    cleanup: () => decoder.close(),
  };
}

/** Once the target is up again: it must have loaded what was placed (throwing rolls the swap back). */
async function checkLoaded(ctx: ModeContext, destName: string, singleFile = false): Promise<void> {
  const { input, target } = ctx;
  const where = `components.${input.component.name}.restore`;
  const client = await connectTarget(target, 0, input.signal);
  try {
    const info = await readInfo(client, 'persistence');
    if (!ctx.aof && info.aof_enabled === '1') {
      throw new TykdrError('targetError', `Redis at ${target.display} started with AOF enabled, so it loaded its append-only file instead of the restored ${destName}`, {
        fix: `use ${where}.mode: live, or disable appendonly on the target before an rdb-file restore`,
      });
    }
    if (ctx.aof) {
      if (info.aof_enabled !== '1') {
        throw new TykdrError('targetError', `Redis at ${target.display} started with AOF disabled, so it ignored the restored ${destName} folder and loaded its RDB`, {
          fix: `make ${where}.startCommand start Redis with appendonly yes`,
        });
      }
      const get = async (name: string) => ((await client.config('GET', name).catch(() => [])) as string[])[1];
      const [file, dirName] = [await get('appendfilename'), await get('appenddirname')];
      if (singleFile) {
        if (file !== undefined && file !== destName) {
          throw new TykdrError('targetError', `Redis at ${target.display} started with appendfilename ${file}, so it did not load the restored ${destName}`, {
            fix: `start Redis with the appendfilename it had before the restore ("${destName}")`,
          });
        }
        return;
      }
      if ((file !== undefined && file !== ctx.aof.appendfilename) || (dirName !== undefined && dirName !== destName)) {
        throw new TykdrError('targetError', `Redis at ${target.display} started with appendfilename ${file} in ${dirName}, so it did not load the restored ${ctx.aof.appendfilename} in ${destName}`, {
          fix: `start Redis with appendfilename "${ctx.aof.appendfilename}" and appenddirname "${destName}" (its redis.conf)`,
        });
      }
    }
  } finally {
    client.disconnect();
  }
}
