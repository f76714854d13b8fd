import { open } from 'node:fs/promises';
import path from 'node:path';
import type { RedisRestoreInput, RedisRestoreOutcome } from './restore-types.js';
import type { RedisComponent } from '../../../core/config/load.js';
import { parseDuration } from '../../../core/duration.js';
import { isAbortError, TykdrError } from '../../../core/errors.js';
import { inflateStaged } from '../../../core/restore/staging.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { KEY_CLASSES, type KeyClass } from '../../../core/tyk/key-classes.js';
import {
  checkKeyCounts, checkKeyCountsApprox, checkPing, checkReplicas, checkSample, checkTtl, observeSample, REDIS_CHECKS, scanPages,
  type RedisCheckName, type SampleObservation,
} from './redis-checks.js';
import { checkResult } from '../../../core/checks/result.js';
import { unpackAof, type StagedAof } from './aof-staging.js';
import { ClusterTarget } from './cluster-target.js';
import { buildKeyExpectation, type KeyExpectation } from './key-expectation.js';
import {
  inspectionFromStaging, inspectKeysFile, inspectRdbEvidence, inspectRdbForLive, keysInspectionOf, type InspectOptions, type KeysInspection, type RdbEvidence,
} from './keys-inspect.js';
import { maxRdbVersion, releaseAtLeast } from '../formats/rdb-versions.js';
import { runKeys } from './restore-keys-mode.js';
import { runSelective } from './selective-restore.js';
import { compressedRdb, ReplicationNotUsed, replicationMisfit, runReplicationLoad } from './replication-load.js';
import { runFileMode, runLive, type ModeContext, type ModeResult } from './restore-modes.js';
import {
  checkModeFits, checkPayloadVersion, checkRdbFileConfig, checkScratchBinary, checkTargetAccepts, readTargetFacts, snapshotFormat, snapshotRdb, snapshotWriter,
  type SnapshotVersion, type TargetFacts,
} from './restore-preflight.js';
import { connectTarget, explainTargetError, keyspaceOf, readInfo, RedisPool, resolveRestoreTarget, type RestoreTarget } from '../protocol/target-connection.js';
import { hostname } from 'node:os';
import { binaryName, type ServerBinary } from './scratch-binary.js';
import { clearRestoreMarker, readRestoreMarker, RESTORE_MARKER_KEY, setRestoreMarker, type RestoreMarker } from './restore-marker.js';



/**
 * Restores one Redis component from a staged artifact, then runs the requested checks.
 *
 *   format rdb   live: scratch server on the RDB, keys copied (DUMP/RESTORE); rdb-file: dump.rdb placed
 *   format aof   live: scratch server on the AOF folder, keys copied; aof-file: the AOF folder placed
 *   format keys  live: every record RESTOREd (into a standalone Redis, or routed by slot into a Redis Cluster)
 *
 * Contract:
 * - The staged artifact is checked whole (AOF: unpacked, every file validated; keys: read through, record
 *   count and SHA-256 checked) before any target is contacted: a damaged artifact is an integrityError.
 * - Nothing on the target changes before every refusal has been considered: a restore mode that does not
 *   suit the snapshot, a replica, a cluster (except for keys), a snapshot newer than the target loads (RDB
 *   version, or DUMP payload version), AOF on/off against the file mode, missing file-mode config.
 * - Throws (targetError, badInput, integrityError, or an AbortError) when the restore itself fails; file
 *   modes put the previous data back and restart Redis first. Checks never throw: a failed check is a result.
 * - Never puts a password or a key name in details, checks, errors or progress.
 */
export async function restoreRedis(input: RedisRestoreInput): Promise<RedisRestoreOutcome> {
  const { component: c, signal } = input;
  const r = c.restore;
  const format = snapshotFormat(input.manifest, c.name);
  checkModeFits(c, format);
  const wanted = input.checks.filter((n): n is RedisCheckName => (REDIS_CHECKS as readonly string[]).includes(n));
  const warnings: string[] = [];
  const details: Record<string, unknown> = { mode: r.mode, format, warnings };
  if (input.feed && !input.selection) throw new Error(`components.${c.name}: a replication feed is applied here only for a selective restore`);
  if (input.selection && r.mode !== 'live') throw new Error(`components.${c.name}: a selective restore writes keys into the running target (restore.mode live), not ${r.mode}`);
  if (r.mode !== 'live') checkRdbFileConfig(c);

  input.progress?.({ phase: 'preflight' });
  const { restored, wantsCounts, sampleSize, loadBy, classesMisfit, defer, crcCheckedAtBackup, read } = inspectionPlan(input, format);
  // Staged still compressed (restore.load replication): only the load by replication streams it; any other path
  // (a selective or dry run, a point in time) reads a plaintext file, inflated here first. A refusal needs neither.
  if (input.stagedCompression && loadBy !== 'replication') input = await inflateRdb(input);
  const staged = await checkStaged(input, format, { ...read, signal: input.signal }, defer);
  const snap = staged.snap;
  if (staged.keys) readDetails(details, format, input.stagedRead !== undefined, crcCheckedAtBackup);
  const target = await resolveRestoreTarget(c, signal);
  Object.assign(details, {
    target: target.display,
    resolved_via: target.address.via,
    [format === 'keys' ? 'snapshot_payload_rdb_version' : 'snapshot_rdb_version']: snap.version || null,
    snapshot_written_by: snap.writtenBy,
  });
  const pool = new RedisPool((db) => connectTarget(target, db, signal));
  let cluster: ClusterTarget | null = null;
  let mode: ModeResult | null = null;
  let evidence: { result: Promise<RdbEvidence>; stop(): void; begin(): void } | null = null;
  try {
    let facts: TargetFacts | null = null;
    try {
      facts = await readTargetFacts(target, await pool.db(0), signal);
    } catch (err) {
      // A self-managed Redis may be down in a disaster: a file mode can still put the data back.
      if (r.mode === 'live' || !/unreachable|ECONNREFUSED/.test((err as Error).message)) throw err;
      warnings.push(`Redis at ${target.display} was not running before the restore: its version (RDB ${snap.version} support) and AOF setting could not be checked`);
    }
    let targetVersion = facts?.version;
    if (facts) {
      checkTargetAccepts(c, target, facts, snap);
      if (facts.maxRdb === null) warnings.push(`target Redis version "${facts.version}" is not one tykdr knows: whether it loads RDB version ${snap.version} was not checked`);
      Object.assign(details, { target_server: facts.name, target_redis_version: facts.version, target_max_rdb_version: facts.maxRdb, target_keys_before: facts.keys, replicas_before: facts.replicas });
    }
    if (facts?.cluster) {
      cluster = await ClusterTarget.discover(target, await pool.db(0));
      targetVersion = await checkCluster(c, cluster, snap, staged.keys!, signal);
    }
    // A scratch server: restores of an AOF (commands, not RDB values): the live copy, or a file-mode restore's evidence.
    let scratchBin: ServerBinary | undefined;
    // A selective point in time: the snapshot and the feed are put together in a scratch server, then selected from.
    if (input.feed) scratchBin = (await pickScratch(c, facts, snap, true, staged.aof, details, warnings, signal)).binary;
    else if (r.mode === 'live' && format === 'aof') scratchBin = (await pickScratch(c, facts, snap, true, staged.aof, details, warnings, signal)).binary;
    else if (r.mode !== 'live' && format === 'aof' && (sampleSize > 0 || wantsCounts)) {
      // Evidence only: without a fitting binary the restore still runs, and the checks say why (restore-modes.ts).
      scratchBin = await pickScratch(c, facts, snap, false, staged.aof, details, warnings, signal).then((p) => p.binary, () => undefined);
    }

    let expectation: KeyExpectation | null = null;
    // restore.load: an RDB snapshot into a target that holds no key may be loaded by the target itself, as a replica.
    let replication = false;
    if (loadBy !== 'restore') {
      const misfit = classesMisfit ?? replicationMisfit({ facts, target }, cluster);
      if (misfit === null) replication = true;
      else if (loadBy === 'replication') throw replicationRefused(c, target, misfit);
      else warnings.push(`components.${c.name}.restore.load is auto: keys were written with RESTORE, because ${misfit}`);
    }
    const inspectLive = async () => {
      input.progress?.({ phase: 'inspect' });
      staged.keys = await inspectRdbForLive(input.rdbFile, { ...read, signal: input.signal });
      readDetails(details, format, false, crcCheckedAtBackup);
    };
    if (defer && !replication) await inspectLive();
    // rdb-file, and a load by replication: the staged RDB is read for the evidence while the target loads it (restore-modes.ts).
    const evidenceWanted = format === 'rdb' && !input.selection && (wantsCounts || sampleSize > 0) ? { restored, sampleSize, expectation: wantsCounts } : null;
    // (Staged still compressed, the load by replication reads it for the evidence as it decompresses it.)
    if ((r.mode !== 'live' || replication) && evidenceWanted && !input.stagedCompression) evidence = await readRdbEvidence(input, restored, sampleSize, wantsCounts, !replication);
    if (wantsCounts && format === 'rdb' && !staged.keys && !input.selection && !evidence && !replication) {
      input.progress?.({ phase: 'inspect' });
      expectation = await buildKeyExpectation(input.rdbFile, signal);
    }
    const ctx: ModeContext = {
      input, target, pool, facts, sampleSize, details, warnings, snapshot: snap, aof: staged.aof, wantExpectation: wantsCounts, scratchBin,
      ...(evidence ? { rdbEvidence: evidence.result, beginEvidence: evidence.begin } : {}),
    };
    const started = Date.now();
    // A live write leaves a marker until every key is in (a killed restore is then plainly partial). A load by
    // replication has none: the full sync would drop it, and the target's role shows an unfinished load.
    let marked = false;
    const mark = async () => {
      marked = input.marker !== undefined && r.mode === 'live' && cluster === null && !input.dryRun;
      if (!marked) return;
      try {
        await setRestoreMarker(await pool.db(0), { ...input.marker!, started_at: new Date().toISOString(), host: hostname() });
      } catch (err) {
        // A least-privilege restore user (RESTORE, no SET) still restores; only the marker is missing.
        if (!/NOPERM/i.test(String((err as Error).message))) throw explainTargetError(err, target, `set the in-progress marker ${RESTORE_MARKER_KEY}`);
        marked = false;
        warnings.push(`user "${target.conn.username ?? 'default'}" may not SET on ${target.display}: no in-progress marker (${RESTORE_MARKER_KEY}) shows this restore while it writes; grant +set +del to have one`);
      }
    };
    if (replication) {
      try {
        mode = await runReplicationLoad(ctx, evidenceWanted);
      } catch (err) {
        if (!(err instanceof ReplicationNotUsed)) throw err;
        if (loadBy === 'replication') throw replicationRefused(c, target, err.message);
        warnings.push(`components.${c.name}.restore.load is auto: keys were written with RESTORE, because ${err.message}`);
        // Nothing changed on the target: the keys go in with RESTORE, from the full live inspection.
        evidence?.stop();
        evidence = null;
        delete ctx.rdbEvidence;
        await inspectLive();
      }
    }
    if (!mode) {
      await mark();
      mode = input.selection
        ? await runSelective(ctx, staged.keys, cluster, targetVersion, input.selection, input.dryRun === true)
        : staged.keys ? await runKeys(ctx, staged.keys, cluster, targetVersion) : r.mode === 'live' ? await runLive(ctx) : await runFileMode(ctx);
    }
    // The marker's DEL may be the first command to meet a target that stopped answering: its error names the stall.
    if (marked) await clearRestoreMarker(await pool.db(0)).catch((err: unknown) => {
      throw explainTargetError(err, target, `delete the in-progress marker ${RESTORE_MARKER_KEY}`);
    });
    details.restore_ms = Date.now() - started;
    expectation ??= mode.expectation ?? null;
    if (input.dryRun) return { details, checks: [] };

    input.progress?.({ phase: 'verify' });
    const after = cluster ? await clusterInfo(cluster, signal) : await readInfo(await pool.db(0)).catch(() => ({}) as Record<string, string>);
    const afterKs = keyspaceOf(after);
    details.target_keys_after = [...afterKs.values()].reduce((a, b) => a + b, 0);
    const checks = await runChecks(wanted, {
      input, target, pool, cluster, restored, expectation, mode, facts,
      targetDbs: [...afterKs.keys()],
      masterOffset: Number(after.master_repl_offset ?? 0),
      pexpiretime: releaseAtLeast(after.redis_version ?? targetVersion, 7),
    });
    return { details, checks };
  } catch (err) {
    if (isAbortError(err) || err instanceof TykdrError) throw err;
    throw new TykdrError('targetError', `restoring components.${c.name} into ${target.display} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    evidence?.stop();
    pool.close();
    cluster?.close();
    await mode?.cleanup?.().catch(() => undefined);
  }
}

/** What a restore reads from its staged artifact before it writes, from its input alone (restoreRedis and liveReadPlan). */
function inspectionPlan(input: Pick<RedisRestoreInput, 'component' | 'manifest' | 'checks' | 'selection' | 'feed' | 'dryRun'>, format: SnapshotVersion['format']) {
  const c = input.component;
  const r = c.restore;
  const restored = new Set<KeyClass>(r.mode === 'live' ? r.classes : KEY_CLASSES);
  const wantsCounts = input.checks.includes('redis-key-counts');
  const sampleSize = input.checks.includes('redis-sample') || input.checks.includes('redis-ttl') ? r.sample : 0;
  // restore.load replication/auto: where the snapshot's classes allow it, the live inspection waits until the target is
  // known (a load by replication reads the staged RDB for its evidence while the target loads it, as rdb-file does).
  const loadBy = r.mode === 'live' && format === 'rdb' && !input.selection && !input.feed && !input.dryRun ? r.load : 'restore';
  const classesMisfit = loadBy === 'restore' ? null : replicationClassesMisfit(c, input.manifest);
  const defer = loadBy !== 'restore' && classesMisfit === null;
  // The backup checked the RDB's CRC-64 as it streamed it, and staging proves these are the same bytes (SHA-256).
  const crcCheckedAtBackup = format === 'rdb' && input.manifest.source.rdb_checksum === 'ok';
  // The whole read before a live write; a selective restore draws its own sample (of the keys it wrote) and checks
  // its own counts.
  const read: InspectOptions = { restored, sampleSize: input.selection ? 0 : sampleSize, expectation: wantsCounts && !input.selection, crcCheckedAtBackup };
  return { restored, wantsCounts, sampleSize, loadBy, classesMisfit, defer, crcCheckedAtBackup, read };
}

/** Which read of the staged RDB or keys stream came before the live write, and whether it computed the RDB's CRC-64. */
function readDetails(details: Record<string, unknown>, format: SnapshotVersion['format'], whileStaging: boolean, crcCheckedAtBackup: boolean): void {
  if (format === 'aof') return;
  details.staged_read = whileStaging ? 'while staging' : 'after staging';
  if (format === 'rdb') details.rdb_crc = crcCheckedAtBackup ? 'checked by the backup (same bytes: SHA-256)' : 'checked';
}

/**
 * The whole read of a staged plaintext RDB a live restore makes before its first write (checkStaged: structure,
 * CRC-64, key counts, the sample), when this restore makes one; null otherwise. What it returns is what checkStaged
 * passes to inspectRdbForLive, so the read can be made while the RDB is staged (redis-target.ts readWhileStaging).
 */
export function liveReadPlan(input: Pick<RedisRestoreInput, 'component' | 'manifest' | 'checks' | 'selection' | 'feed' | 'dryRun'>, stagedCompressed: boolean): (InspectOptions & { format: 'rdb' | 'keys' }) | null {
  const f = input.manifest.artifact.format;
  if ((f !== 'rdb' && f !== 'keys') || stagedCompressed) return null;
  // A keys stream is always read whole first (it restores only live); an RDB when restored live and not loaded by replication.
  if (f === 'rdb' && input.component.restore.mode !== 'live' && !input.selection) return null;
  const p = inspectionPlan(input, f);
  if (f === 'rdb' && p.defer) return null;
  return { format: f, ...p.read };
}

/** A staged RDB kept compressed, inflated into the work folder for a path that reads a plaintext file (size checked). */
async function inflateRdb(input: RedisRestoreInput): Promise<RedisRestoreInput> {
  const file = path.join(input.workDir, 'staged.rdb');
  await inflateStaged(compressedRdb(input), file, `components.${input.component.name}`, input.signal);
  const { stagedCompression: _, ...rest } = input;
  return { ...rest, rdbFile: file };
}

/** The snapshot's key classes (the manifest's, counted at backup) that restore.classes leaves out: a full sync would load them. */
function replicationClassesMisfit(c: RedisComponent, manifest: ManifestComponent): string | null {
  const counts = new Map<string, number>();
  const add = (cls: string, n: unknown) => counts.set(cls, (counts.get(cls) ?? 0) + (typeof n === 'number' ? n : 0));
  const classes = manifest.source.key_classes as Record<string, unknown> | undefined;
  if (!classes || typeof classes !== 'object') return 'the manifest does not say which key classes the snapshot holds';
  for (const [k, v] of Object.entries(classes)) {
    if (v !== null && typeof v === 'object') for (const [cls, n] of Object.entries(v)) add(cls, n);
    else add(k, v);
  }
  const skipped = [...counts].filter(([cls, n]) => n > 0 && !c.restore.classes.includes(cls as KeyClass)).map(([cls]) => cls);
  return skipped.length > 0 ? `the snapshot holds keys of classes not restored (${skipped.join(', ')}; restore.classes), and a full sync loads every key` : null;
}

/** restore.load replication was asked for and does not fit: nothing on the target changed. */
function replicationRefused(c: RedisComponent, target: RestoreTarget, why: string): TykdrError {
  return new TykdrError('targetError', `components.${c.name}.restore.load is replication, but the target at ${target.display} cannot load the snapshot that way: ${why}. Nothing was changed`, {
    fix: `set components.${c.name}.restore.load to auto (RESTORE per key where replication does not fit) or restore`,
  });
}

/** Chooses the scratch binary and says in the report which one, and why when it is not the configured one. */
async function pickScratch(c: RedisComponent, facts: TargetFacts | null, snap: SnapshotVersion, live: boolean, aof: StagedAof | undefined, details: Record<string, unknown>, warnings: string[], signal?: AbortSignal) {
  const chosen = await checkScratchBinary(c, facts, snap, live, aof !== undefined && !aof.singleFile, signal);
  details.scratch_server = binaryName(chosen.binary);
  if (chosen.picked) {
    warnings.push(
      `components.${c.name}.restore.redisServer "${c.restore.redisServer}" cannot ${live ? `serve this restore (snapshot RDB version ${snap.version}, target ${facts?.name ?? 'unknown'})` : `load this snapshot (RDB version ${snap.version})`}: ` +
        `the scratch server is ${binaryName(chosen.binary)} (${chosen.binary.path}) instead`,
    );
  }
  return chosen;
}

/**
 * Reads the staged RDB for an rdb-file restore's evidence (expectation, payload sample); the file is opened before this
 * returns, so it reads on after the swap renames it. `deferred`: the read waits for begin() (an rdb-file restore
 * begins it once the file is in place, so that it runs beside the target's load and not beside the stop: on the
 * same thread, each step of the stop and the swap would wait for it). stop() ends an unfinished or unbegun read.
 */
async function readRdbEvidence(
  input: RedisRestoreInput,
  restored: Set<KeyClass>,
  sampleSize: number,
  wantsCounts: boolean,
  deferred: boolean,
): Promise<{ result: Promise<RdbEvidence>; stop(): void; begin(): void }> {
  const ac = new AbortController();
  let begin = () => undefined as void;
  const go = deferred ? new Promise<void>((resolve) => (begin = resolve)) : Promise.resolve();
  // An abort also begins an unbegun read, which then fails at once: its result settles and its file is closed.
  const onAbort = () => {
    ac.abort(input.signal?.reason);
    begin();
  };
  input.signal?.addEventListener('abort', onAbort, { once: true });
  const handle = await open(input.rdbFile, 'r');
  const result = go
    .then(() => inspectRdbEvidence(handle, { name: input.rdbFile, restored, sampleSize, expectation: wantsCounts, signal: ac.signal }))
    .finally(() => {
      input.signal?.removeEventListener('abort', onAbort);
      return handle.close().catch(() => undefined);
    });
  result.catch(() => undefined);
  return {
    result,
    stop: () => {
      ac.abort();
      begin();
    },
    begin: () => begin(),
  };
}

interface StagedCheck {
  snap: SnapshotVersion;
  aof?: StagedAof;
  keys?: KeysInspection;
}

/**
 * Checks the staged artifact whole, before any target is contacted; returns what the target must load. `defer`:
 * a live RDB restore that may load by replication reads the RDB once the target is known (restore-redis.ts).
 */
async function checkStaged(input: RedisRestoreInput, format: SnapshotVersion['format'], o: InspectOptions, defer: boolean): Promise<StagedCheck> {
  const writtenBy = snapshotWriter(input.manifest);
  if (format === 'rdb') {
    const snap = { format, ...(await snapshotRdb(input.manifest, input.rdbFile, input.signal, input.stagedCompression)) };
    if (input.component.restore.mode !== 'live' || defer) return { snap };
    // Live: every key's value is cut from the RDB as a RESTORE payload (no scratch server); read whole here first,
    // unless that read was made while the RDB was staged (the same options: liveReadPlan).
    input.progress?.({ phase: 'inspect' });
    const read = input.stagedRead ? await input.stagedRead : null;
    const keys = read?.format === 'rdb' ? await inspectionFromStaging(input.rdbFile, read.ev, o) : await inspectRdbForLive(input.rdbFile, o);
    return { snap, keys };
  }
  input.progress?.({ phase: 'inspect' });
  if (format === 'aof') {
    const aof = await unpackAof(input.rdbFile, path.join(input.workDir, 'aof'), input.signal);
    return { snap: { format, version: aof.baseRdbVersion ?? 0, writtenBy }, aof };
  }
  // (Read while staged, with the same options: liveReadPlan.)
  const read = input.stagedRead ? await input.stagedRead : null;
  const keys = read?.format === 'keys' ? keysInspectionOf(input.rdbFile, read.read) : await inspectKeysFile(input.rdbFile, o);
  return { snap: { format, version: keys.payloadVersion, writtenBy: typeof input.manifest.source.server === 'string' || !keys.writtenBy ? writtenBy : `Redis ${keys.writtenBy}` }, keys };
}

/** A Redis Cluster target: every master must load the payloads, and a cluster has only database 0. Returns the oldest master's version. */
async function checkCluster(c: RedisComponent, cluster: ClusterTarget, snap: SnapshotVersion, keys: KeysInspection, signal?: AbortSignal): Promise<string> {
  const versions = await cluster.versions(signal);
  for (const v of versions) checkPayloadVersion(c, `target Redis ${v.version} at ${v.display}`, { maxRdb: maxRdbVersion(v.version) }, snap);
  const others = keys.dbs.filter((d) => d !== 0);
  if (others.length > 0) {
    throw new TykdrError('targetError', `the snapshot holds keys in database ${others.join(', ')}, but the Redis Cluster at ${cluster.target.display} has only database 0. Nothing was changed`, {
      fix: 'restore into a standalone Redis, or back up only database 0 (keys.databases: [0])',
    });
  }
  return versions.map((v) => v.version).sort((a, b) => (maxRdbVersion(a) ?? 0) - (maxRdbVersion(b) ?? 0))[0] ?? 'unknown';
}

/** INFO of a cluster as one server: keyspace summed over the masters (database 0), the rest from the first. */
async function clusterInfo(cluster: ClusterTarget, signal?: AbortSignal): Promise<Record<string, string>> {
  let keys = 0;
  let first: Record<string, string> = {};
  for (let i = 0; i < cluster.masters.length; i++) {
    const info = await readInfo(await cluster.client(i, signal)).catch(() => ({}) as Record<string, string>);
    if (i === 0) first = info;
    keys += keyspaceOf(info).get(0) ?? 0;
  }
  return { ...first, db0: `keys=${keys}` };
}

interface CheckContext {
  input: RedisRestoreInput;
  target: RestoreTarget;
  pool: RedisPool;
  cluster: ClusterTarget | null;
  restored: ReadonlySet<KeyClass>;
  expectation: KeyExpectation | null;
  mode: ModeResult;
  facts: TargetFacts | null;
  targetDbs: number[];
  masterOffset: number;
  pexpiretime: boolean;
}

async function runChecks(names: RedisCheckName[], x: CheckContext): Promise<CheckResult[]> {
  const r = x.input.component.restore;
  const tolerance = parseDuration(r.ttlTolerance) ?? 5000;
  const db = (n: number) => x.pool.db(n);
  const cluster = x.cluster;
  const signal = x.input.signal;
  const sampler = x.mode.sampler ?? (x.mode.sample ? { summary: x.mode.sample, observe: () => observeSample(db, x.mode.sample!, x.pexpiretime, signal), notDecodedWhy: () => undefined } : null);
  let observations: Promise<SampleObservation[]> | null = null;
  const observe = () => (observations ??= sampler!.observe());
  const masters = cluster
    ? async () => Promise.all(cluster.masters.map(async (_m, i) => ({ display: cluster.node(i).display, client: await cluster.client(i, signal) })))
    : undefined;
  const out: CheckResult[] = [];
  for (const name of names) {
    const started = Date.now();
    try {
      out.push(await runCheck(name));
    } catch (err) {
      if (isAbortError(err)) throw err;
      // A target that stopped answering is not a failed verification: the restore fails as a target error.
      if (/^Command timed out/.test((err as Error).message)) throw explainTargetError(err, x.target, `run the check ${name}`);
      out.push(checkResult(name, 'failed', `could not run: ${(err as Error).message.split('\n')[0]}`, undefined, started));
    }
  }
  return out;

  async function runCheck(name: RedisCheckName): Promise<CheckResult> {
    const started = Date.now();
    const noSample = () =>
      checkResult(name, 'skipped', x.mode.sampleSkipped ?? (r.sample === 0 ? 'restore.sample is 0' : 'no sample was taken'), undefined, started);
    switch (name) {
      case 'redis-ping':
        return checkPing(db, signal, masters);
      case 'redis-key-counts':
        if (x.mode.countsCheck) return x.mode.countsCheck();
        if (!x.expectation) {
          const atBackup = x.input.manifest.source.databases as Record<string, { keys: number; expires: number }> | undefined;
          return checkKeyCountsApprox({ db, atBackup: atBackup ?? {}, reason: x.mode.expectationSkipped ?? 'the restored data could not be counted', signal });
        }
        {
          const counts = {
            db, targetDbs: x.targetDbs, expectation: x.expectation, restored: x.restored, exact: r.mode !== 'live',
            skewMs: tolerance, manifestKeyClasses: x.input.manifest.source.key_classes, signal,
            ...(cluster ? { scan: clusterScan(cluster) } : {}),
          };
          // rdb-file: the target loaded the file the expectation was read from (its CRC-64 checked by Redis as it loaded it).
          if (x.mode.loadedFile) return checkKeyCounts({ ...counts, countBy: 'dbsize' });
          // Live into a target that held no key: every key it holds now was written by this restore, one RESTORE per
          // key of the restored classes, each answered OK. DBSIZE within the alive keys of those classes then proves
          // the count without a SCAN of the whole keyspace (1M keys: 2.6 s). Anything else (a writer that added or
          // removed keys meanwhile) is counted per class by SCAN, which says what differs.
          if (r.mode === 'live' && !cluster && x.facts?.keys === 0) {
            const because = x.mode.loadedByReplication
              ? 'the target held no key before the restore and loaded the staged RDB whole by replication'
              : 'the target held no key before the restore, and every key of the restored classes was written with RESTORE';
            const quick = await checkKeyCounts({ ...counts, exact: true, countBy: 'dbsize', dbsizeBecause: because });
            if (quick.status === 'passed') return quick;
          }
          return checkKeyCounts(counts);
        }
      case 'redis-sample':
        return sampler ? checkSample(sampler.summary, await observe(), tolerance, started, { notDecodedWhy: sampler.notDecodedWhy() }) : noSample();
      case 'redis-ttl':
        return sampler ? checkTtl(await observe(), tolerance, started) : noSample();
      case 'redis-replicas':
        if (cluster) return clusterReplicas(cluster, r.replicaCatchUpTimeout, signal);
        return checkReplicas({
          db, replicasBefore: x.facts?.replicas ?? 0, masterOffset: x.masterOffset,
          timeoutMs: parseDuration(r.replicaCatchUpTimeout) ?? 120_000, signal,
        });
    }
  }
}

/** SCAN of every master of a cluster (database 0 only). */
function clusterScan(cluster: ClusterTarget) {
  return async function* (dbIndex: number, signal?: AbortSignal): AsyncGenerator<Buffer[]> {
    if (dbIndex !== 0) return;
    for (let i = 0; i < cluster.masters.length; i++) yield* scanPages(await cluster.client(i, signal), signal);
  };
}

/** redis-replicas on a cluster: each master's replicas must reach its offset. */
async function clusterReplicas(cluster: ClusterTarget, timeout: string, signal?: AbortSignal): Promise<CheckResult> {
  const started = Date.now();
  const results: CheckResult[] = [];
  for (let i = 0; i < cluster.masters.length; i++) {
    const client = await cluster.client(i, signal);
    const info = await readInfo(client, 'replication');
    results.push(
      await checkReplicas({
        db: async () => client,
        replicasBefore: Number(info.connected_slaves ?? 0),
        masterOffset: Number(info.master_repl_offset ?? 0),
        timeoutMs: parseDuration(timeout) ?? 120_000,
        signal,
      }),
    );
  }
  const evidence = { masters: Object.fromEntries(results.map((res, i) => [cluster.node(i).display, { status: res.status, detail: res.detail }])) };
  const failed = results.filter((res) => res.status === 'failed');
  if (failed.length > 0) return checkResult('redis-replicas', 'failed', failed.map((f) => f.detail).join('; '), evidence, started);
  if (results.every((res) => res.status === 'skipped')) return checkResult('redis-replicas', 'skipped', 'no master of the cluster has replicas', evidence, started);
  return checkResult('redis-replicas', 'passed', `the replicas of ${results.filter((res) => res.status === 'passed').length} master(s) reached their offsets`, evidence, started);
}

/** For --dry-run and the overwrite confirmation: facts about the target without changing it. */
export async function inspectRedisTarget(
  component: RedisComponent,
  signal?: AbortSignal,
): Promise<{ address: string; redisVersion: string; serverName: string; maxRdbVersion: number; keys: number; aofEnabled: boolean; role: string; partial: RestoreMarker | null }> {
  const target = await resolveRestoreTarget(component, signal);
  const client = await connectTarget(target, 0, signal);
  try {
    const f = await readTargetFacts(target, client, signal);
    const partial = await readRestoreMarker(client).catch(() => null);
    return { address: target.display, redisVersion: f.version, serverName: f.name ?? `Redis ${f.version}`, maxRdbVersion: f.maxRdb ?? 0, keys: f.keys, aofEnabled: f.aof, role: f.role, partial };
  } finally {
    client.disconnect();
  }
}

/** Restore modes that work while the target is down (they start it themselves): the dry run and preflight may tolerate an unreachable target. */
export function restoreModeStartsTarget(component: RedisComponent): boolean {
  return component.restore.mode !== 'live';
}
