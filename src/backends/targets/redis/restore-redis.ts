import type { RedisComponent } from '../../../core/config/load.js';
import { parseDuration } from '../../../core/duration.js';
import { isAbortError, TykdrError } from '../../../core/errors.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { KEY_CLASSES, type KeyClass } from '../../../core/tyk/key-classes.js';
import {
  checkKeyCounts, checkPing, checkReplicas, checkSample, checkTtl, observeSample, REDIS_CHECKS,
  type RedisCheckName, type SampleObservation,
} from '../../../verify/redis-checks.js';
import { checkResult } from '../../../verify/check-util.js';
import { buildKeyExpectation, type KeyExpectation } from './key-expectation.js';
import { releaseAtLeast } from './rdb-versions.js';
import { runLive, runRdbFile, type ModeResult } from './restore-modes.js';
import { checkRdbFileConfig, checkScratchBinary, checkTargetAccepts, readTargetFacts, snapshotRdb, type TargetFacts } from './restore-preflight.js';
import { connectTarget, keyspaceOf, readInfo, RedisPool, resolveRestoreTarget } from './target-connection.js';

export interface RedisRestoreInput {
  component: RedisComponent;
  /** The snapshot's entry for this component. */
  manifest: ManifestComponent;
  /** The staged plaintext RDB, already SHA-256 verified and decrypted. rdb-file mode moves it into the target's data dir. */
  rdbFile: string;
  /** Scratch folder on the same filesystem as rdbFile; the caller removes it afterwards. */
  workDir: string;
  /** Checks to run after the restore (names that are not Redis checks are ignored). */
  checks: string[];
  signal?: AbortSignal;
  progress?: (e: { phase: string; keys?: number; totalKeys?: number }) => void;
}

export interface RedisRestoreOutcome {
  /** What was done: target, versions, keys copied/skipped per class, timings, the old RDB's new name. No secrets, no key names. */
  details: Record<string, unknown>;
  /** One result per requested Redis check, in the order requested. */
  checks: CheckResult[];
}

/**
 * Restores one Redis component from a staged RDB, then runs the requested checks.
 *
 * Contract:
 * - Nothing on the target changes before every refusal has been considered: a replica or cluster target,
 *   an RDB version newer than the target loads, AOF in rdb-file mode, missing rdb-file config.
 * - Throws (targetError, badInput, integrityError, or an AbortError) when the restore itself fails; rdb-file
 *   mode puts the previous RDB back and restarts Redis first. Checks never throw: a failed check is a result.
 * - Never puts a password or a key name in details, checks, errors or progress.
 */
export async function restoreRedis(input: RedisRestoreInput): Promise<RedisRestoreOutcome> {
  const { component: c, signal } = input;
  const r = c.restore;
  const wanted = input.checks.filter((n): n is RedisCheckName => (REDIS_CHECKS as readonly string[]).includes(n));
  const warnings: string[] = [];
  const details: Record<string, unknown> = { mode: r.mode, warnings };
  if (r.mode === 'rdb-file') checkRdbFileConfig(c);

  input.progress?.({ phase: 'preflight' });
  const target = await resolveRestoreTarget(c, signal);
  const rdb = await snapshotRdb(input.manifest, input.rdbFile, signal);
  Object.assign(details, { target: target.display, resolved_via: target.address.via, snapshot_rdb_version: rdb.version, snapshot_written_by: rdb.writtenBy });
  const pool = new RedisPool((db) => connectTarget(target, db, signal));
  try {
    let facts: TargetFacts | null = null;
    try {
      facts = await readTargetFacts(target, await pool.db(0), signal);
    } catch (err) {
      // A self-managed Redis may be down in a disaster: rdb-file mode can still put the file back.
      if (r.mode !== 'rdb-file' || !/unreachable|ECONNREFUSED/.test((err as Error).message)) throw err;
      warnings.push(`Redis at ${target.display} was not running before the restore: its version (RDB ${rdb.version} support) and AOF setting could not be checked`);
    }
    if (facts) {
      checkTargetAccepts(c, target, facts, rdb);
      if (facts.maxRdb === null) warnings.push(`target Redis version "${facts.version}" is not one tykdr knows: whether it loads RDB version ${rdb.version} was not checked`);
      Object.assign(details, { target_redis_version: facts.version, target_max_rdb_version: facts.maxRdb, target_keys_before: facts.keys, replicas_before: facts.replicas });
    }
    if (r.mode === 'live') await checkScratchBinary(c, facts, rdb, signal);

    const restored = new Set<KeyClass>(r.mode === 'live' ? r.classes : KEY_CLASSES);
    let expectation: KeyExpectation | null = null;
    if (wanted.includes('redis-key-counts')) {
      input.progress?.({ phase: 'inspect' });
      expectation = await buildKeyExpectation(input.rdbFile, signal);
    }
    const wantsSample = wanted.includes('redis-sample') || wanted.includes('redis-ttl');
    const ctx = { input, target, pool, facts, sampleSize: wantsSample ? r.sample : 0, details, warnings };
    const started = Date.now();
    const mode: ModeResult = r.mode === 'live' ? await runLive(ctx) : await runRdbFile(ctx);
    details.restore_ms = Date.now() - started;

    input.progress?.({ phase: 'verify' });
    const after = await readInfo(await pool.db(0)).catch(() => ({}) as Record<string, string>);
    const afterKs = keyspaceOf(after);
    details.target_keys_after = [...afterKs.values()].reduce((a, b) => a + b, 0);
    const targetVersion = after.redis_version ?? facts?.version;
    const checks = await runChecks(wanted, {
      input, pool, restored, expectation, mode, facts,
      targetDbs: [...afterKs.keys()],
      masterOffset: Number(after.master_repl_offset ?? 0),
      pexpiretime: releaseAtLeast(targetVersion, 7),
    });
    return { details, checks };
  } catch (err) {
    if (isAbortError(err) || err instanceof TykdrError) throw err;
    throw new TykdrError('targetError', `restoring components.${c.name} into ${target.display} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    pool.close();
  }
}

interface CheckContext {
  input: RedisRestoreInput;
  pool: RedisPool;
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
  let observations: Promise<SampleObservation[]> | null = null;
  const observe = () => (observations ??= observeSample(db, x.mode.sample!, x.pexpiretime, x.input.signal));
  const out: CheckResult[] = [];
  for (const name of names) {
    const started = Date.now();
    try {
      out.push(await runCheck(name));
    } catch (err) {
      if (isAbortError(err)) throw err;
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
        return checkPing(db, x.input.signal);
      case 'redis-key-counts':
        return checkKeyCounts({
          db, targetDbs: x.targetDbs, expectation: x.expectation!, restored: x.restored, exact: r.mode === 'rdb-file',
          skewMs: tolerance, manifestKeyClasses: x.input.manifest.source.key_classes, signal: x.input.signal,
        });
      case 'redis-sample':
        return x.mode.sample ? checkSample(x.mode.sample, await observe(), tolerance, started) : noSample();
      case 'redis-ttl':
        return x.mode.sample ? checkTtl(await observe(), tolerance, started) : noSample();
      case 'redis-replicas':
        return checkReplicas({
          db, replicasBefore: x.facts?.replicas ?? 0, masterOffset: x.masterOffset,
          timeoutMs: parseDuration(r.replicaCatchUpTimeout) ?? 120_000, signal: x.input.signal,
        });
    }
  }
}

/** For --dry-run and the overwrite confirmation: facts about the target without changing it. */
export async function inspectRedisTarget(
  component: RedisComponent,
  signal?: AbortSignal,
): Promise<{ address: string; redisVersion: string; maxRdbVersion: number; keys: number; aofEnabled: boolean; role: string }> {
  const target = await resolveRestoreTarget(component, signal);
  const client = await connectTarget(target, 0, signal);
  try {
    const f = await readTargetFacts(target, client, signal);
    return { address: target.display, redisVersion: f.version, maxRdbVersion: f.maxRdb ?? 0, keys: f.keys, aofEnabled: f.aof, role: f.role };
  } finally {
    client.disconnect();
  }
}
