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
