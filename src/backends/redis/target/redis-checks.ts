import { checksBy, type ChecksBy } from '../../../core/checks/registry.js';
import type { Redis } from 'ioredis';
import type { CheckResult } from '../../../core/restore/types.js';
import { classifyKey, KEY_CLASSES, type KeyClass } from '../../../core/tyk/key-classes.js';
import type { KeyExpectation } from './key-expectation.js';
import { keyLabel, type SnapshotSample } from './snapshot-sample.js';
import { readFingerprint, SAMPLE_READS_IN_FLIGHT, type ValueFingerprint } from './value-fingerprint.js';
import { parseInfo } from '../protocol/connection.js';
import { checkResult, guarded } from '../../../core/checks/result.js';
import { formatMs } from '../../../core/util/text.js';
import { poll } from '../../../core/util/poll.js';
import { throwIfAborted } from '../../../core/util/abort.js';
import { mapConcurrent } from '../../../core/util/pool.js';

/**
 * Checks that prove a Redis restore worked. Each returns one CheckResult and never throws (except on abort):
 * a check that cannot run is failed with the reason. Keys are credentials: evidence names a key only as
 * keyLabel() (class + short hash), never in full.
 */
export const REDIS_CHECKS = checksBy('redis');
export type RedisCheckName = ChecksBy<'redis'>;

/** Connections to the target, one per database index. */
export type DbConnections = (db: number) => Promise<Redis>;

/**
 * redis-ping: the target answers PING with PONG. With `masters` (a Redis Cluster), every master must, and
 * the cluster must say cluster_state:ok.
 */
export function checkPing(db: DbConnections, signal?: AbortSignal, masters?: () => Promise<Array<{ display: string; client: Redis }>>): Promise<CheckResult> {
  const started = Date.now();
  return guarded('redis-ping', started, async () => {
    throwIfAborted(signal);
    if (masters) {
      const nodes = await masters();
      const replies: Record<string, string> = {};
      for (const n of nodes) replies[n.display] = String(await n.client.ping());
      const state = /cluster_state:(\w+)/.exec(String(await nodes[0]!.client.call('CLUSTER', 'INFO')))?.[1] ?? 'unknown';
      const bad = Object.entries(replies).filter(([, r]) => r !== 'PONG');
      const ok = bad.length === 0 && state === 'ok';
      const detail = ok
        ? `PING answered PONG on all ${nodes.length} masters; cluster_state:ok`
        : `${bad.map(([d, r]) => `${d} answered ${JSON.stringify(r)}`).join('; ')}${state !== 'ok' ? `${bad.length ? '; ' : ''}cluster_state:${state}` : ''}`;
      return checkResult('redis-ping', ok ? 'passed' : 'failed', detail, { replies, cluster_state: state, ms: Date.now() - started }, started);
    }
    const reply = await (await db(0)).ping();
    const ok = reply === 'PONG';
    return checkResult('redis-ping', ok ? 'passed' : 'failed', ok ? 'PING answered PONG' : `PING answered ${JSON.stringify(reply)}`, { reply, ms: Date.now() - started }, started);
  });
}

export interface KeyCountOptions {
  db: DbConnections;
  /** Database indexes the target reports keys in (INFO keyspace). */
  targetDbs: number[];
  expectation: KeyExpectation;
  /** Classes the restore wrote; the others are counted for the report only. */
  restored: ReadonlySet<KeyClass>;
  /** rdb-file mode: the target holds exactly the snapshot. live mode: it may hold more (keys written since). */
  exact: boolean;
  /** Allowance for clock differences between this host and the target. */
  skewMs: number;
  /** The manifest's key_classes, shown for reference. */
  manifestKeyClasses?: unknown;
  /** Lists a database's keys page by page; default SCAN on db(n). A Redis Cluster target scans every master. */
  scan?: (db: number, signal?: AbortSignal) => AsyncIterable<Buffer[]>;
  /**
   * 'dbsize': count each database with DBSIZE instead of SCANning its keys. Only where the target loaded the very
   * file the expectation was read from (rdb-file: Redis checked its CRC-64 as it loaded it), so the keys per class
   * are the file's; DBSIZE then proves the number (with every class restored). A SCAN of 1M keys costs the target
   * about a second of CPU. DBSIZE also counts keys that expired since the load and are not evicted yet: the upper
   * bound is the keys alive when the file was read.
   */
  countBy?: 'scan' | 'dbsize';
  /** countBy 'dbsize': why DBSIZE proves the count, said in the check's detail (default: the rdb-file reason). */
  dbsizeBecause?: string;
  signal?: AbortSignal;
}

/** Keys per SCAN page: 10,000 keeps a page's work on the server at a few ms while round trips stay few (1M keys: 100). */
const SCAN_COUNT = 10_000;

/** SCAN of one connection, page by page. */
export async function* scanPages(client: Redis, signal?: AbortSignal): AsyncGenerator<Buffer[]> {
  let cursor = '0';
  do {
    throwIfAborted(signal);
    const [next, keys] = (await client.scanBuffer(cursor, 'COUNT', SCAN_COUNT)) as [Buffer, Buffer[]];
    cursor = next.toString();
    yield keys;
  } while (cursor !== '0');
}

/**
 * redis-key-counts: per database and class, the keys on the target (SCAN, streamed) against the keys of the
 * staged RDB that are still alive. Keys whose expiry falls inside the counting window (± skew) may go either
 * way, so each expectation is a range.
 */
export function checkKeyCounts(o: KeyCountOptions): Promise<CheckResult> {
  if (o.countBy === 'dbsize') return checkKeyCountsByDbsize(o);
  const started = Date.now();
  return guarded('redis-key-counts', started, async () => {
    const dbs = [...new Set([...o.expectation.databases(), ...o.targetDbs])].sort((a, b) => a - b);
    const databases: Record<string, Record<string, unknown>> = {};
    const problems: string[] = [];
    let expectedTotal = 0;
    let actualTotal = 0;
    const scan = o.scan ?? (async function* (n: number, signal?: AbortSignal) {
      yield* scanPages(await o.db(n), signal);
    });
    for (const dbIndex of dbs) {
      const from = Date.now();
      const actual = Object.fromEntries(KEY_CLASSES.map((c) => [c, 0])) as Record<KeyClass, number>;
      for await (const keys of scan(dbIndex, o.signal)) for (const k of keys) actual[classifyKey(k)]++;
      const to = Date.now();
      const row: Record<string, unknown> = {};
      for (const cls of KEY_CLASSES) {
        const restored = o.restored.has(cls);
        const hi = o.expectation.aliveAt(dbIndex, cls, from - o.skewMs).max;
        const lo = o.expectation.aliveAt(dbIndex, cls, to + o.skewMs).min;
        if (!restored) {
          if (actual[cls] > 0 || hi > 0) row[cls] = { restored: false, in_snapshot: hi, actual: actual[cls] };
          continue;
        }
        if (hi === 0 && actual[cls] === 0) continue;
        row[cls] = { restored: true, expected: hi, may_expire_meanwhile: hi - lo, actual: actual[cls] };
        expectedTotal += hi;
        actualTotal += actual[cls];
        const ok = o.exact ? actual[cls] >= lo && actual[cls] <= hi : actual[cls] >= lo;
        if (!ok) {
          const range = lo === hi ? `${hi}` : `${lo}..${hi}`;
          problems.push(`db ${dbIndex} ${cls}: expected ${o.exact ? '' : 'at least '}${range}, found ${actual[cls]}`);
        }
      }
      databases[String(dbIndex)] = row;
    }
    const evidence: Record<string, unknown> = {
      comparison: o.exact ? 'exact' : 'at-least',
      restored_classes: [...o.restored],
      databases,
      expected_total: expectedTotal,
      actual_total: actualTotal,
      beyond_expiry_horizon: o.expectation.beyondHorizon(Date.now()) || undefined,
      manifest_key_classes: o.manifestKeyClasses,
    };
    if (problems.length > 0) return checkResult('redis-key-counts', 'failed', problems.slice(0, 5).join('; '), evidence, started);
    const extra = actualTotal - expectedTotal;
    const how = o.exact
      ? 'exactly as in the snapshot'
      : `at least as many as the snapshot holds per class${extra > 0 ? ` (${extra} more: live mode keeps keys the target had that the snapshot does not)` : ''}`;
    return checkResult('redis-key-counts', 'passed', `${actualTotal} keys of restored classes in ${dbs.length} database(s), ${how}`, evidence, started);
  });
}

/** redis-key-counts with countBy 'dbsize' (see KeyCountOptions): per database, DBSIZE within the file's alive keys. */
function checkKeyCountsByDbsize(o: KeyCountOptions): Promise<CheckResult> {
  const started = Date.now();
  return guarded('redis-key-counts', started, async () => {
    const dbs = [...new Set([...o.expectation.databases(), ...o.targetDbs])].sort((a, b) => a - b);
    const databases: Record<string, Record<string, unknown>> = {};
    const problems: string[] = [];
    let expectedTotal = 0;
    let actualTotal = 0;
    for (const dbIndex of dbs) {
      const actual = Number(await (await o.db(dbIndex)).dbsize());
      const to = Date.now();
      const row: Record<string, unknown> = {};
      let lo = 0;
      let hi = 0;
      for (const cls of o.expectation.classesOf(dbIndex)) {
        // A class not restored (live mode's restore.classes) is not in the target's DBSIZE.
        if (!o.restored.has(cls)) continue;
        const clsHi = o.expectation.aliveAt(dbIndex, cls, o.expectation.inspectedAt - o.skewMs).max;
        const clsLo = o.expectation.aliveAt(dbIndex, cls, to + o.skewMs).min;
        if (clsHi === 0) continue;
        row[cls] = { restored: o.restored.has(cls), expected: clsHi, may_expire_meanwhile: clsHi - clsLo };
        hi += clsHi;
        lo += clsLo;
      }
      row.dbsize = actual;
      databases[String(dbIndex)] = row;
      expectedTotal += hi;
      actualTotal += actual;
      if (actual < lo || actual > hi) problems.push(`db ${dbIndex}: expected ${lo === hi ? hi : `${lo}..${hi}`} keys (DBSIZE), found ${actual}`);
    }
    const evidence: Record<string, unknown> = {
      comparison: 'exact',
      counted_by: 'dbsize',
      restored_classes: [...o.restored],
      databases,
      expected_total: expectedTotal,
      actual_total: actualTotal,
      beyond_expiry_horizon: o.expectation.beyondHorizon(Date.now()) || undefined,
      manifest_key_classes: o.manifestKeyClasses,
    };
    if (problems.length > 0) return checkResult('redis-key-counts', 'failed', problems.slice(0, 5).join('; '), evidence, started);
    return checkResult(
      'redis-key-counts', 'passed',
      `${actualTotal} keys in ${dbs.length} database(s), exactly as in the snapshot (DBSIZE per database; ${o.dbsizeBecause ?? 'the keys per class are those of the file the target loaded'})`,
      evidence, started,
    );
  });
}

/** What the target holds for each sampled key, read once for both redis-sample and redis-ttl. */
export interface SampleObservation {
  label: string;
  snapshot: ValueFingerprint;
  /** Null when the target does not have the key. */
  target: ValueFingerprint | null;
  observedAt: number;
}

/**
 * Reads the target's side of the sample, SAMPLE_READS_IN_FLIGHT keys at once (each read is round trips to a target
 * that may be a network away); reads content only when type and size already match the snapshot's (which was read
 * only up to MAX_COMPARED_BYTES).
 */
export async function observeSample(db: DbConnections, sample: SnapshotSample, pexpiretime: boolean, signal?: AbortSignal): Promise<SampleObservation[]> {
  return mapConcurrent(sample.entries, SAMPLE_READS_IN_FLIGHT, async (e) => {
    throwIfAborted(signal);
    const client = await db(e.db);
    // A value the snapshot side did not read (too large, module type) is compared by type only: size -1 never matches.
    const target = await readFingerprint(client, e.key, { pexpiretime, expectSize: e.fp.skipped === undefined ? e.fp.size : -1, expectType: e.fp.type, signal });
    return { label: keyLabel(e.cls, e.key), snapshot: e.fp, target, observedAt: Date.now() };
  });
}

/** redis-sample: sampled keys hold, on the target, the same type and content as in the snapshot. */
export async function checkSample(
  sample: Pick<SnapshotSample, 'requested' | 'population' | 'expiredBeforeRead'>,
  observations: SampleObservation[],
  toleranceMs: number,
  started = Date.now(),
  notes: { notDecodedWhy?: string } = {},
): Promise<CheckResult> {
  const ev = { requested: sample.requested, population: sample.population, sampled: observations.length, matched: 0, mismatched: 0, expired_since_snapshot: sample.expiredBeforeRead, too_large: 0, unsupported_type: 0, not_decoded: 0 };
  const mismatches: Array<{ key: string; reason: string }> = [];
  for (const o of observations) {
    const s = o.snapshot;
    let reason: string | null = null;
    if (o.target === null) {
      if (s.expiresAtMs !== null && s.expiresAtMs <= o.observedAt + toleranceMs) {
        ev.expired_since_snapshot++;
        continue;
      }
      reason = 'missing on the target';
    } else if (o.target.type !== s.type) reason = `type ${o.target.type}, snapshot has ${s.type}`;
    else if (s.skipped === 'too-large') ev.too_large++;
    else if (s.skipped === 'unsupported-type') ev.unsupported_type++;
    else if (s.skipped === 'not-decoded') ev.not_decoded++;
    else if (o.target.size !== s.size) reason = `size ${o.target.size}, snapshot has ${s.size}`;
    else if (o.target.digest !== s.digest) reason = 'content differs';
    if (reason === null) {
      if (s.skipped === undefined) ev.matched++;
    } else {
      ev.mismatched++;
      if (mismatches.length < 20) mismatches.push({ key: o.label, reason });
    }
  }
  const evidence = { ...ev, mismatches };
  if (sample.requested === 0) return checkResult('redis-sample', 'skipped', 'restore.sample is 0', evidence, started);
  if (observations.length === 0 && ev.mismatched === 0) {
    return checkResult('redis-sample', 'skipped', 'the snapshot holds no keys of the restored classes to sample', evidence, started);
  }
  if (ev.mismatched > 0) {
    return checkResult('redis-sample', 'failed', `${ev.mismatched} of ${observations.length} sampled keys differ from the snapshot (${mismatches.slice(0, 3).map((m) => `${m.key}: ${m.reason}`).join('; ')})`, evidence, started);
  }
  let skippedNote = ev.too_large + ev.unsupported_type > 0 ? `; ${ev.too_large} over 1 MiB and ${ev.unsupported_type} of module types compared by type only` : '';
  if (ev.not_decoded > 0) skippedNote += `; ${ev.not_decoded} serialized differently and compared by type only (${notes.notDecodedWhy ?? 'not decoded'})`;
  return checkResult('redis-sample', 'passed', `${ev.matched} sampled keys match the snapshot byte for byte${skippedNote}`, evidence, started);
}

/** redis-ttl: sampled keys expire when the snapshot says, within the tolerance (no expiry must stay no expiry). */
export async function checkTtl(observations: SampleObservation[], toleranceMs: number, started = Date.now()): Promise<CheckResult> {
  let within = 0;
  let maxDrift = 0;
  const outliers: Array<Record<string, unknown>> = [];
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  for (const o of observations) {
    if (o.target === null) continue;
    const a = o.snapshot.expiresAtMs;
    const b = o.target.expiresAtMs;
    const drift = a === null && b === null ? 0 : a === null || b === null ? Infinity : Math.abs(a - b);
    if (drift <= toleranceMs) {
      within++;
      maxDrift = Math.max(maxDrift, drift);
    } else if (outliers.length < 20) {
      outliers.push({ key: o.label, snapshot_expires_at: iso(a), target_expires_at: iso(b), drift_ms: Number.isFinite(drift) ? drift : null });
    }
  }
  const checked = observations.filter((o) => o.target !== null).length;
  const outside = checked - within;
  const evidence = { checked, within, outside, max_drift_ms: maxDrift, tolerance_ms: toleranceMs, outliers };
  if (checked === 0) return checkResult('redis-ttl', 'skipped', 'no sampled key to compare (see redis-sample)', evidence, started);
  if (outside > 0) return checkResult('redis-ttl', 'failed', `${outside} of ${checked} sampled keys expire at a different time than in the snapshot (tolerance ${formatMs(toleranceMs)})`, evidence, started);
  return checkResult('redis-ttl', 'passed', `${checked} sampled keys expire as in the snapshot (largest drift ${formatMs(maxDrift)}, tolerance ${formatMs(toleranceMs)})`, evidence, started);
}

export interface ReplicaCheckOptions {
  db: DbConnections;
  /** Replicas the master had before the restore (an rdb-file restore restarts it: they must come back). */
  replicasBefore: number;
  /** master_repl_offset when the restore finished: every replica must reach it. */
  masterOffset: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ReplicaState {
  address: string;
  state: string;
  offset: number;
  lag: number | null;
}

/** The replicas a master's INFO replication lists (slave0: ip=...,port=...,state=...,offset=...,lag=...). */
export function replicasOf(info: Record<string, string>): ReplicaState[] {
  const out: ReplicaState[] = [];
  for (const [k, v] of Object.entries(info)) {
    if (!/^slave\d+$/.test(k)) continue;
    const f = Object.fromEntries(v.split(',').map((kv) => kv.split('=') as [string, string]));
    out.push({ address: `${f.ip}:${f.port}`, state: f.state ?? '?', offset: Number(f.offset ?? 0), lag: f.lag === undefined ? null : Number(f.lag) });
  }
  return out;
}

/** redis-replicas: every replica of the target master is online and has reached the master's offset at the end of the restore. */
export function checkReplicas(o: ReplicaCheckOptions): Promise<CheckResult> {
  const started = Date.now();
  return guarded('redis-replicas', started, async () => {
    const client = await o.db(0);
    const read = async () => replicasOf(parseInfo(String(await client.info('replication'))));
    const expected = Math.max(o.replicasBefore, (await read()).length);
    if (expected === 0) return checkResult('redis-replicas', 'skipped', 'the target master has no replicas', { replicas: [] }, started);
    const outcome = await poll({ timeoutMs: o.timeoutMs, intervalMs: 200, signal: o.signal }, async () => {
      const reps = await read();
      const caughtUp = reps.filter((r) => r.state === 'online' && r.offset >= o.masterOffset).length;
      return { done: reps.length >= expected && caughtUp === reps.length, state: reps };
    });
    const evidence = { expected_replicas: expected, master_offset: o.masterOffset, replicas: outcome.state, waited_ms: outcome.elapsedMs };
    if (outcome.done) {
      return checkResult('redis-replicas', 'passed', `${outcome.state.length} replica(s) reached the master's offset ${o.masterOffset} in ${formatMs(outcome.elapsedMs)}`, evidence, started);
    }
    const behind = outcome.state.filter((r) => r.state !== 'online' || r.offset < o.masterOffset).map((r) => `${r.address} ${r.state} at ${r.offset}`);
    const missing = expected - outcome.state.length;
    const why = [...behind, ...(missing > 0 ? [`${missing} replica(s) not connected`] : [])].join('; ');
    return checkResult('redis-replicas', 'failed', `replicas did not reach the master's offset ${o.masterOffset} within ${formatMs(o.timeoutMs)}: ${why}`, evidence, started);
  });
}

export interface ApproxKeyCountOptions {
  db: DbConnections;
  /** The manifest's `databases`: per index, keys and expires as INFO keyspace reported them at backup time. */
  atBackup: Record<string, { keys: number; expires: number }>;
  /** Why the exact comparison could not be made. */
  reason: string;
  signal?: AbortSignal;
}

/**
 * redis-key-counts when the restored data could not be counted key by key (an AOF restore whose scratch
 * server did not run): per database, the target's INFO keyspace against the counts Redis reported when the
 * backup began. Keys with a TTL may have expired since, so the floor is keys without expiry; keys written
 * while the files were copied may add to it. A weaker check, and it says so.
 */
export function checkKeyCountsApprox(o: ApproxKeyCountOptions): Promise<CheckResult> {
  const started = Date.now();
  return guarded('redis-key-counts', started, async () => {
    throwIfAborted(o.signal);
    const info = parseInfo(String(await (await o.db(0)).info('keyspace')));
    const databases: Record<string, Record<string, number>> = {};
    const problems: string[] = [];
    let total = 0;
    for (const [db, c] of Object.entries(o.atBackup)) {
      const actual = Number(/keys=(\d+)/.exec(info[`db${db}`] ?? '')?.[1] ?? 0);
      const floor = c.keys - c.expires;
      databases[db] = { at_backup: c.keys, without_expiry_at_backup: floor, actual };
      total += actual;
      if (actual < floor) problems.push(`db ${db}: expected at least ${floor} (keys without a TTL at backup time), found ${actual}`);
    }
    const evidence = { comparison: 'approximate (INFO keyspace at backup time)', reason: o.reason, databases };
    if (problems.length > 0) return checkResult('redis-key-counts', 'failed', problems.slice(0, 5).join('; '), evidence, started);
    return checkResult('redis-key-counts', 'passed', `${total} keys; every database holds at least the keys without a TTL that Redis counted at backup time (approximate: ${o.reason})`, evidence, started);
  });
}
