import { createHash } from 'node:crypto';
import type { Store } from '../interfaces/store.js';
import { manifestBytes } from '../catalog.js';
import { integrityError } from '../errors.js';
import { manifestKey, manifestSignatureKey } from '../layout.js';
import type { Manifest } from '../manifest.js';
import { findSigningKey, verifyKeysOf, type VerifyKey } from './keys.js';

/**
 * What is known about a manifest's signature:
 * - verified: a key in signing.verifyKeys signed these exact bytes;
 * - not-checked: no signing.verifyKeys configured, so nothing was checked (signed says whether a
 *   signature object exists);
 * - unsigned / bad: verifyKeys are configured and no signature exists / none of them signed these bytes.
 *   Restore, drill and verify refuse both (requireTrustedManifest).
 */
export interface ManifestSignatureCheck {
  status: 'verified' | 'not-checked' | 'unsigned' | 'bad';
  /** A manifest.json.sig object exists. */
  signed: boolean;
  /** SHA-256 (hex) of the manifest's exact bytes. */
  manifestSha256: string;
  /** The trusted key that signed it (verified only). */
  key?: { publicKey: string; fingerprint: string };
  /** One line for reports and output. */
  detail: string;
}

export const NOT_CHECKED = 'manifest signature not checked';

/**
 * Checks a manifest's signature against signing.verifyKeys, over the bytes the manifest was parsed from
 * (catalog.manifestBytes); a manifest object that did not come from the catalog is read again.
 */
export async function checkManifestSignature(
  store: Store,
  manifest: Manifest,
  signing: { verifyKeys: string[] },
  signal?: AbortSignal,
): Promise<ManifestSignatureCheck> {
  const bytes = manifestBytes(manifest) ?? (await readAll(store, manifestKey(manifest.id), signal));
  const manifestSha256 = createHash('sha256').update(bytes).digest('hex');
  const keys = verifyKeysOf(signing);
  const exists = (await store.stat(manifestSignatureKey(manifest.id), { signal })) !== null;
  // Without keys to check against, the signature's bytes are not needed.
  const sig = exists && keys.length > 0 ? await readAll(store, manifestSignatureKey(manifest.id), signal) : null;
  const signed = exists;
  if (keys.length === 0) {
    return {
      status: 'not-checked',
      signed,
      manifestSha256,
      detail: `${NOT_CHECKED} (no signing.verifyKeys configured)${signed ? '; the snapshot has a signature' : '; the snapshot is unsigned'}`,
    };
  }
  if (!sig) return { status: 'unsigned', signed, manifestSha256, detail: `manifest of snapshot ${manifest.id} is unsigned (no ${manifestSignatureKey(manifest.id)})` };
  const key: VerifyKey | null = findSigningKey(bytes, sig, keys);
  if (!key) {
    return {
      status: 'bad',
      signed,
      manifestSha256,
      detail: `manifest signature of snapshot ${manifest.id} does not verify with any of the ${keys.length} key(s) in signing.verifyKeys (${keys.map((k) => k.fingerprint).join(', ')})`,
    };
  }
  return {
    status: 'verified',
    signed,
    manifestSha256,
    key: { publicKey: key.publicKey, fingerprint: key.fingerprint },
    detail: `manifest signature verified with ${key.fingerprint} (${key.publicKey})`,
  };
}

/** Throws integrityError (exit 5) naming the snapshot when verifyKeys are configured and the check failed. */
export function requireTrustedManifest(check: ManifestSignatureCheck, snapshotId: string): ManifestSignatureCheck {
  if (check.status === 'unsigned' || check.status === 'bad') {
    throw integrityError(
      `snapshot ${snapshotId} is refused: ${check.detail}`,
      check.status === 'unsigned'
        ? 'the manifest was not written by a backup host holding a trusted signing key (or predates signing); use a signed snapshot, or add the backup host\'s public key to signing.verifyKeys'
        : 'the manifest was changed or signed by an untrusted key; use another snapshot, or add the backup host\'s public key to signing.verifyKeys',
    );
  }
  return check;
}

/** checkManifestSignature, then requireTrustedManifest. */
export async function trustedManifest(store: Store, manifest: Manifest, signing: { verifyKeys: string[] }, signal?: AbortSignal): Promise<ManifestSignatureCheck> {
  return requireTrustedManifest(await checkManifestSignature(store, manifest, signing, signal), manifest.id);
}

async function readAll(store: Store, key: string, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of await store.get(key, { signal })) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    if (size > 64 * 1024 * 1024) throw integrityError(`${key} is larger than 64 MiB: not a tykdr manifest or signature`, 'use another snapshot');
  }
  return Buffer.concat(chunks);
}
