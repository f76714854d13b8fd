import type { RedisComponent } from '../../../core/config/load.js';
import type { Target } from '../../../core/interfaces/target.js';
import { REDIS_CHECKS } from './redis-checks.js';
import { inspectRedisTarget, liveReadPlan, restoreModeStartsTarget, restoreRedis } from './restore-redis.js';
import { readWhileStaged, type StagedRead } from './keys-inspect.js';
import { sideStream, tee } from './replication-load.js';
import { startScratchRedis } from './scratch-redis.js';
import { binaryName, chooseScratchBinary, type ServerBinary } from './scratch-binary.js';
import { snapshotWriter } from './restore-preflight.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import { TykdrError } from '../../../core/errors.js';
import { connectTarget, readInfo, resolveRestoreTarget } from '../protocol/target-connection.js';
import { waitSentinelSettled } from './sentinel-settle.js';

/** Redis (and Redis-compatible servers): live copy, rdb-file or aof-file modes, keys mode for managed Redis and Cluster. */
export const redisTarget: Target<RedisComponent> = {
  kind: 'redis',
  artifactKinds: ['redis'],
  checks: REDIS_CHECKS,
  role: () => 'redis',
  roleOf: () => 'redis',

  async assess({ name, component: c, signal }) {
    try {
      const t = await inspectRedisTarget(c, signal);
      const partial = t.partial
        ? `PARTIAL: restore ${t.partial.restore_id} of snapshot ${t.partial.snapshot} (started ${t.partial.started_at}) did not finish writing here`
        : undefined;
      return [
        {
          component: name,
          target: `redis ${t.address} (${t.serverName}, ${c.restore.mode}${c.restore.mode === 'live' && c.restore.load !== 'restore' ? `, load ${c.restore.load}` : ''})`,
          liveData: t.keys > 0 ? `${t.keys} keys${partial ? `, ${partial}` : ''}` : null,
          ...(partial ? { warning: `${name}: redis ${t.address} is ${partial}` } : {}),
        },
      ];
    } catch (err) {
      if (!restoreModeStartsTarget(c)) throw err;
      return [
        {
          component: name,
          target: `redis (${c.restore.mode} into ${c.restore.dataDir ?? '?'})`,
          liveData: null,
          warning: `${name}: target Redis not reachable before the restore (${(err as Error).message}); its version could not be checked`,
        },
      ];
    }
  },

  /** restore.load replication: the RDB is decompressed into the target as it loads (no plaintext file written first). */
  stagesCompressed: (entry, c) => stagedCompressed(entry, c),

  /**
   * Staged compressed, only the decrypted object is written: the load by replication decompresses it into the target.
   * (A dry or selective run inflates it into a file first; a disk too full for that fails there, before any target is
   * contacted: core/restore/staging.ts inflateStaged.)
   */
  stagingBytes: (entry, c) => (stagedCompressed(entry, c) ? entry.artifact.stored_bytes : entry.artifact.plaintext_bytes),

  /**
   * A live restore of a plaintext RDB, and any restore of a keys stream, reads it whole before its first write
   * (structure and checksum, counts, the sample): that read is made from the plaintext as it is staged (liveReadPlan
   * says when, and with which options).
   */
  readWhileStaging(i) {
    const plan = liveReadPlan({ ...i, component: effective(i), manifest: i.entry, checks: [...i.checks] }, stagedCompressed(i.entry, i.component));
    if (plan === null) return null;
    const side = sideStream();
    const { format, ...o } = plan;
    const result = readWhileStaged(format, side, `${i.name} (as it was staged)`, { ...o, signal: i.signal });
    // Its failure is the restore's to report (checkStaged awaits it); staging goes on without it meanwhile.
    result.catch(() => side.resume());
    return { through: tee(side), result };
  },

  async restore(i) {
    i.note(`  restoring ${i.name} (redis)`);
    let shown = 0;
    const component = effective(i);
    // The read made while staging serves the first attempt; one redone after a failover reads the file again.
    let stagedRead = i.stagedRead as Promise<StagedRead> | undefined;
    const once = () => {
      const read = stagedRead;
      stagedRead = undefined;
      return restoreRedis({
        ...(read ? { stagedRead: read } : {}),
        component,
        selection: i.selection,
        dryRun: i.dryRun,
        feed: i.feed,
        manifest: i.entry,
        rdbFile: i.stagedFile,
        ...(i.stagedCompression ? { stagedCompression: i.stagedCompression } : {}),
        workDir: i.workDir,
        checks: [...i.checks],
        signal: i.signal,
        marker: { restore_id: i.restoreId, snapshot: i.snapshotId },
        progress: (e) => {
          // Print each time another 100,000 keys are crossed (SCAN pages are uneven).
          if (e.keys !== undefined && Math.floor(e.keys / 100_000) > shown) {
            shown = Math.floor(e.keys / 100_000);
            i.note(`    ${i.name}: ${e.phase} ${e.keys}${e.totalKeys ? ` of ${e.totalKeys}` : ''} keys`);
          }
        },
      });
    };
    // Without Sentinel the address is fixed: nothing can move under the restore.
    if (!i.component.sentinel || i.component.restore.target?.host !== undefined) return once();
    return restoreThroughFailovers(i.component, once, i.note, i.signal, !i.dryRun);
  },

  async scratch({ component: c, config, dir, entry, signal }) {
    const { binary, warnings } = await drillServer(config.drill.redisServer, entry, signal);
    const s = await startScratchRedis(binary?.path ?? config.drill.redisServer, dir, signal);
    return {
      ...(binary ? { description: `${binaryName(binary)} (${binary.path})` } : {}),
      warnings,
      component: { ...c, sentinel: undefined, restore: { ...c.restore, mode: 'live', target: { host: '127.0.0.1', port: s.port, password: s.password } } },
      stop: async () => {
        await s.stop();
        return [];
      },
    };
  },

  retarget: (c, addr) => ({ ...c, restore: { ...c.restore, target: { ...c.restore.target, host: addr.host, port: addr.port } } }),
};

/** How often a restore is redone on a new master before tykdr gives up (Sentinel kept failing over). */
const FAILOVER_ATTEMPTS = 3;

/**
 * A Sentinel-managed target can fail over while tykdr writes or checks: the old master is demoted and
 * resyncs from the new one, losing what was written to it. So the master (address and run id) is taken
 * before each attempt and again after it; if it changed (or the attempt failed and it changed), the
 * restore is redone on the new master. Success is reported only when the master at the end is the one
 * that was written and checked, and no failover under way can still lose it (every replica a sentinel could
 * promote attached at the master's offset, none failing over: sentinel-settle.ts).
 */
async function restoreThroughFailovers(
  c: RedisComponent,
  once: () => ReturnType<typeof restoreRedis>,
  note: (line: string) => void,
  signal: AbortSignal,
  wrote: boolean,
): ReturnType<typeof restoreRedis> {
  const moves: string[] = [];
  for (let attempt = 1; attempt <= FAILOVER_ATTEMPTS; attempt++) {
    const before = await masterIdentity(c, signal);
    let out: Awaited<ReturnType<typeof restoreRedis>> | undefined;
    let failure: unknown;
    try {
      out = await once();
    } catch (err) {
      if (signal.aborted) throw err;
      failure = err;
    }
    let after = await masterIdentity(c, signal).catch(() => null);
    let when = failure === undefined ? 'while tykdr checked the restore' : 'while tykdr wrote the keys';
    if (sameMaster(after, before) && failure === undefined && wrote) {
      after = await settleOrMove(c, before, out!, signal, note);
      when = 'after tykdr had checked the restore, before every replica had the restored keys';
    }
    const moved = !sameMaster(after, before);
    if (!moved) {
      if (failure !== undefined) throw failure;
      out!.details.failovers = moves;
      return out!;
    }
    const what = `Sentinel failed over from ${before.display} to ${after?.display ?? 'an unknown master'} ${when}`;
    moves.push(what);
    note(`    ${c.name}: ${what}; the old master resyncs from the new one and loses the restored keys: restoring again on the new master`);
  }
  throw new TykdrError('targetError', `components.${c.name}: a Sentinel failover happened during each of ${FAILOVER_ATTEMPTS} attempts (${moves.join('; ')}); the master at the end may not hold the snapshot`, {
    fix: 'find out why Sentinel keeps failing over (sentinel logs), then run the restore again; RESTORE REPLACE makes a rerun safe',
  });
}

type MasterIdentity = { display: string; runId: string };

/** Whether `now` is still the master `before` was (same address, same run id: not restarted or replaced). */
function sameMaster(now: MasterIdentity | null, before: MasterIdentity): boolean {
  return now !== null && now.display === before.display && now.runId === before.runId;
}

/**
 * Written and checked on the master Sentinel still names, which may already be failing over to a replica without
 * the restored keys: waits until no failover can lose them (sentinel-settle.ts) and returns the master then. A
 * connection lost while waiting may be the failover itself (the old master demoted): a move if Sentinel names another.
 */
async function settleOrMove(
  c: RedisComponent,
  before: MasterIdentity,
  out: Awaited<ReturnType<typeof restoreRedis>>,
  signal: AbortSignal,
  note: (line: string) => void,
): Promise<MasterIdentity | null> {
  const waiting = (why: string) => note(`    ${c.name}: waiting until no failover can lose the restored keys (${why})`);
  const settled = await waitSentinelSettled(c, before, signal, waiting).catch(async (err: unknown) => {
    if (signal.aborted) throw err;
    const now = await masterIdentity(c, signal).catch(() => null);
    if (now && !sameMaster(now, before)) return { status: 'moved' as const, to: now.display };
    throw err;
  });
  if (settled.status === 'unsettled') {
    throw new TykdrError(
      'targetError',
      `components.${c.name}: the snapshot was restored and checked on ${before.display}, but after ${Math.round(settled.waitedMs / 1000)} s ${settled.why}: a failover now would lose the restored keys`,
      { fix: `check the sentinels and the replicas of ${c.sentinel!.masterName}; once they agree, run the restore again (RESTORE REPLACE makes a rerun safe)` },
    );
  }
  if (settled.status === 'moved') return { display: settled.to, runId: '' };
  out.details.replicas_settled = { replicas: settled.replicas, waited_ms: settled.waitedMs };
  return masterIdentity(c, signal).catch(() => null);
}

/** The current master as Sentinel names it: address and run id (a restarted or promoted server has a new one). */
async function masterIdentity(c: RedisComponent, signal: AbortSignal): Promise<MasterIdentity> {
  const target = await resolveRestoreTarget(c, signal);
  const client = await connectTarget(target, 0, signal);
  try {
    const info = await readInfo(client);
    return { display: target.display, runId: info.run_id ?? '' };
  } finally {
    client.disconnect();
  }
}

/**
 * The drill's scratch Redis is the restore's target, so it must take the snapshot's values: a server whose
 * RDB version is at least the snapshot's (rdb_version of an RDB or AOF base, payload_rdb_version of a keys
 * snapshot). drill.redisServer is used when it fits; when it is the default ("redis-server") and does not,
 * the closest fitting server on PATH or in tykdr's tool cache is (scratch-binary.ts), with a warning; an
 * explicitly configured one that does not fit is refused before anything starts. Without a snapshot entry
 * (or an RDB version) the configured binary is used as it is.
 */
async function drillServer(configured: string, entry: ManifestComponent | undefined, signal?: AbortSignal): Promise<{ binary: ServerBinary | null; warnings: string[] }> {
  const src = entry?.source ?? {};
  const rdb = Number(entry?.artifact.format === 'keys' ? src.payload_rdb_version : src.rdb_version);
  if (!entry || !Number.isFinite(rdb) || rdb <= 0) return { binary: null, warnings: [] };
  const chosen = await chooseScratchBinary(configured, 'drill.redisServer', { snapshotRdb: rdb, writtenBy: snapshotWriter(entry) }, signal);
  const warnings = chosen.picked
    ? [`drill.redisServer "${configured}" cannot take this snapshot (RDB version ${rdb}, written by ${snapshotWriter(entry)}): the drill's scratch Redis is ${binaryName(chosen.binary)} (${chosen.binary.path}) instead`]
    : [];
  return { binary: chosen.binary, warnings };
}

/** restore.load replication: the RDB is decompressed into the target as it loads (no plaintext file written first). */
function stagedCompressed(entry: ManifestComponent, c: RedisComponent): boolean {
  return entry.kind === 'redis' && entry.artifact.format === 'rdb' && c.restore.mode === 'live' && c.restore.load === 'replication';
}

/** A selective restore writes keys into the running target whatever restore.mode says: a file swap would replace every key. */
function effective(i: { component: RedisComponent; selection?: unknown }): RedisComponent {
  return i.selection ? { ...i.component, restore: { ...i.component.restore, mode: 'live' as const } } : i.component;
}
