import { TykdrError } from '../../../core/errors.js';
import type { KeyClass } from '../../../core/tyk/key-classes.js';
import type { ClusterTarget } from './cluster-target.js';
import type { KeysInspection } from './keys-inspect.js';
import { writeKeys, type KeyRouter } from './keys-restore.js';
import { dumpWithExpiry, observePayloadSample, PayloadDecoder } from './keys-sample.js';
import { releaseAtLeast } from '../formats/rdb-versions.js';
import type { ModeContext, ModeResult } from './restore-modes.js';
import { explainTargetError, openTargetPipe, type RestoreTarget } from '../protocol/target-connection.js';

/** Failures of RESTORE on the target, with what they mean for a key-level restore. */
export function explainRestoreError(err: unknown, target: RestoreTarget, doing: string): Error {
  if (err instanceof TykdrError) return err;
  const msg = String((err as Error)?.message ?? err).split('\n')[0]!;
  const at = `components.${target.conn.name}: Redis at ${target.display}`;
  if (/payload version or checksum/i.test(msg)) {
    return new TykdrError('targetError', `${at} refused a DUMP payload while trying to ${doing} (${msg}): the payload is newer than this Redis loads, or damaged. Keys restored so far stay`, {
      fix: 'restore into a Redis at least as new as the one backed up (redis_version in the manifest)',
      cause: err,
    });
  }
  if (/^(MOVED|ASK) /.test(msg)) {
    return new TykdrError('targetError', `the Redis Cluster at ${target.display} moved a slot during the restore (${msg.split(' ').slice(0, 2).join(' ')}). Keys restored so far stay`, {
      fix: 'run the restore again once no resharding or failover runs: RESTORE REPLACE makes that safe',
      cause: err,
    });
  }
  return explainTargetError(err, target, doing);
}

/**
 * Key-level restore: the staged keys stream (already checked whole by inspectKeysFile) is RESTOREd
 * record by record into the running target, routed per database, or per master by slot on a Redis
 * Cluster. The sample compares the snapshot's DUMP payloads with DUMP on the target afterwards.
 */
export async function runKeys(ctx: ModeContext, keys: KeysInspection, cluster: ClusterTarget | null, targetVersion: string | undefined): Promise<ModeResult> {
  const { input, target, details } = ctx;
  const r = input.component.restore;
  const signal = input.signal;
  const classes = new Set<KeyClass>(r.classes);
  const router: KeyRouter = cluster
    ? { laneOf: (_db, key) => cluster.ownerOf(key), open: (lane) => cluster.pipe(lane, signal), describe: (lane) => cluster.node(lane).display }
    : { laneOf: (db) => db, open: (db) => openTargetPipe(target, db, signal), describe: (db) => `database ${db} of ${target.display}` };
  input.progress?.({ phase: 'restore', keys: 0, totalKeys: keys.records });
  const res = await writeKeys({
    records: keys.open(signal),
    classes,
    batchSize: r.batchSize,
    absTtl: targetVersion === undefined || releaseAtLeast(targetVersion, 5),
    setStrings: true,
    router,
    explain: (err, doing) => explainRestoreError(err, target, doing),
    totalRecords: keys.records,
    signal,
    progress: input.progress,
  });
  Object.assign(details, {
    classes: [...classes],
    databases: keys.dbs,
    snapshot_keys: keys.records,
    snapshot_duplicate_records: keys.duplicates || undefined,
    keys_restored: Object.values(res.restored).reduce((a, b) => a + b, 0),
    restored: res.restored,
    skipped: res.skipped,
    expired_before_restore: res.expired,
    keys_written_with_set: res.bySet,
    ...(res.setRefused ? { set_not_used: res.setRefused } : {}),
    write_ms: res.durationMs,
    keys_per_second: res.keysPerSecond,
    batch_size: r.batchSize,
    ...(cluster ? { cluster_masters: cluster.masters.map((m, i) => ({ address: cluster.node(i).display, slots: m.slots.map(([a, b]) => `${a}-${b}`).join(',') })) } : {}),
  });
  return keysEvidence(ctx, keys, cluster, targetVersion);
}

/**
 * What the checks compare with after the staged records are in the target (by RESTORE, or loaded whole by
 * replication): the inspection's expectation, and its payload sample against DUMP on the target.
 */
export function keysEvidence(ctx: ModeContext, keys: KeysInspection, cluster: ClusterTarget | null, targetVersion: string | undefined): ModeResult {
  const { input } = ctx;
  const r = input.component.restore;
  const signal = input.signal;
  if (!keys.sample || ctx.sampleSize === 0) return { sample: null, expectation: keys.expectation };
  const sample = keys.sample;
  const pexpiretime = targetVersion === undefined || releaseAtLeast(targetVersion, 7);
  const decoder = new PayloadDecoder(r.redisServer, input.workDir, `components.${input.component.name}.restore`, signal);
  return {
    sample: null,
    expectation: keys.expectation,
    sampler: {
      summary: sample,
      observe: () =>
        observePayloadSample(
          sample.entries,
          async (db, key) => dumpWithExpiry(cluster ? await cluster.client(cluster.ownerOf(key), signal) : await ctx.pool.db(db), key, pexpiretime),
          decoder,
          signal,
        ),
      notDecodedWhy: () => decoder.unavailable ?? undefined,
    },
    cleanup: () => decoder.close(),
  };
}
