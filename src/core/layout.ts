import { randomBytes } from 'node:crypto';

/**
 * Where a snapshot's objects live. The one place that names keys.
 *
 *   snapshots/<id>/<component>.<format>.<compression>.age   one self-contained object per artifact
 *   snapshots/<id>/manifest.json.sig                       Ed25519 signature of manifest.json (when signing.keyFile is set)
 *   snapshots/<id>/manifest.json                           written last; its presence = complete
 */
export const SNAPSHOTS_PREFIX = 'snapshots/';
export const MANIFEST_NAME = 'manifest.json';
/** Detached signature of the manifest: raw 64-byte Ed25519 over its exact bytes, written just before it. */
export const MANIFEST_SIGNATURE_NAME = 'manifest.json.sig';

const ID_RE = /^(\d{8}T\d{6}Z)-([0-9a-f]{6})$/;

/** Time-sortable id: UTC second plus 24 random bits, e.g. 20261121T093012Z-4f9a1c. */
export function newSnapshotId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function isSnapshotId(s: string): boolean {
  return ID_RE.test(s);
}

export function snapshotPrefix(id: string): string {
  return `${SNAPSHOTS_PREFIX}${id}/`;
}

export function manifestKey(id: string): string {
  return `${snapshotPrefix(id)}${MANIFEST_NAME}`;
}

export function manifestSignatureKey(id: string): string {
  return `${snapshotPrefix(id)}${MANIFEST_SIGNATURE_NAME}`;
}

export function artifactName(component: string, format: string, compression: string): string {
  return `${component}.${format}.${compression === 'none' ? '' : `${compression === 'gzip' ? 'gz' : 'zst'}.`}age`;
}

export function artifactKey(id: string, name: string): string {
  return `${snapshotPrefix(id)}${name}`;
}

/** Splits "snapshots/<id>/<name>" into its parts; null for keys outside the layout. */
export function parseKey(key: string): { id: string; name: string } | null {
  if (!key.startsWith(SNAPSHOTS_PREFIX)) return null;
  const rest = key.slice(SNAPSHOTS_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const id = rest.slice(0, slash);
  const name = rest.slice(slash + 1);
  return isSnapshotId(id) && name !== '' && !name.includes('/') ? { id, name } : null;
}

/**
 * Point-in-time chains of a Redis component (see docs/FORMAT.md, "Point-in-time chains"):
 *
 *   streams/<chain>/chain.json                 written first: base snapshot id, replication id and offset
 *   streams/<chain>/seg-<seq>.resp.<zst>.age   the replication feed's bytes, verbatim, for one stretch of time
 *   streams/<chain>/seg-<seq>.json             written after its object: offsets, time range, SHA-256; presence = complete
 *
 * <chain> is the id of the base snapshot; <seq> counts from 00000001.
 */
export const STREAMS_PREFIX = 'streams/';

export function chainKey(chain: string): string {
  return `${STREAMS_PREFIX}${chain}/chain.json`;
}

export function segmentName(seq: number, compression: string): string {
  return `seg-${String(seq).padStart(8, '0')}.resp.${compression === 'gzip' ? 'gz' : 'zst'}.age`;
}

export function segmentKey(chain: string, name: string): string {
  return `${STREAMS_PREFIX}${chain}/${name}`;
}

export function segmentMetaKey(chain: string, seq: number): string {
  return `${STREAMS_PREFIX}${chain}/seg-${String(seq).padStart(8, '0')}.json`;
}

/** Splits "streams/<chain>/<name>"; null for keys outside that layout. */
export function parseStreamKey(key: string): { chain: string; name: string } | null {
  if (!key.startsWith(STREAMS_PREFIX)) return null;
  const [chain, name, extra] = key.slice(STREAMS_PREFIX.length).split('/');
  return chain && name && extra === undefined && isSnapshotId(chain) ? { chain, name } : null;
}
