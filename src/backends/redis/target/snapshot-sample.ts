import { createHash } from 'node:crypto';
import { classifyKey, type KeyClass } from '../../../core/tyk/key-classes.js';
import type { SampledKey } from './live-copy.js';
import { Reservoir } from './reservoir.js';
import type { RedisPool } from '../protocol/target-connection.js';
import { MAX_COMPARED_BYTES, readFingerprint, type ValueFingerprint } from './value-fingerprint.js';

export interface SnapshotSampleEntry extends SampledKey {
  /** The value as the snapshot holds it. */
  fp: ValueFingerprint;
}

/**
 * Random keys of the restored classes with their values as the snapshot holds them, taken from a scratch
 * server loaded from the staged RDB before the target was changed. Keys are credentials: they stay in
 * memory only and are shown as keyLabel() everywhere else.
 */
export interface SnapshotSample {
  requested: number;
  /** Keys of restored classes the sample was drawn from. */
  population: number;
  entries: SnapshotSampleEntry[];
  /** Drawn keys that expired before their value could be read. */
  expiredBeforeRead: number;
}

/** "must:3fa2c91b07d4": a key's class and a short hash, the only way a key may appear in output. */
export function keyLabel(cls: KeyClass, key: Buffer): string {
  return `${cls}:${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/** Reads the snapshot-side fingerprints of drawn keys (values over 1 MiB are kept as too-large, not read). */
export async function fingerprintSample(
  pool: RedisPool,
  drawn: Reservoir<SampledKey>,
  requested: number,
  pexpiretime: boolean,
  signal?: AbortSignal,
): Promise<SnapshotSample> {
  const sample: SnapshotSample = { requested, population: drawn.offered, entries: [], expiredBeforeRead: 0 };
  for (const k of drawn.items) {
    signal?.throwIfAborted();
    const client = await pool.db(k.db);
    const fp = await readFingerprint(client, k.key, { pexpiretime, maxBytes: MAX_COMPARED_BYTES, signal });
    if (fp === null) sample.expiredBeforeRead++;
    else sample.entries.push({ ...k, fp });
  }
  return sample;
}

/** Draws `n` random keys of the given classes by SCANning every database (bounded memory: n keys). */
export async function drawByScan(
  pool: RedisPool,
  dbs: number[],
  classes: ReadonlySet<KeyClass>,
  n: number,
  signal?: AbortSignal,
): Promise<Reservoir<SampledKey>> {
  const drawn = new Reservoir<SampledKey>(n);
  for (const db of dbs) {
    const client = await pool.db(db);
    let cursor = '0';
    do {
      signal?.throwIfAborted();
      const [next, keys] = (await client.scanBuffer(cursor, 'COUNT', 1000)) as [Buffer, Buffer[]];
      cursor = next.toString();
      for (const key of keys) {
        const cls = classifyKey(key);
        if (classes.has(cls)) drawn.offer({ db, key, cls });
      }
    } while (cursor !== '0');
  }
  return drawn;
}
