import { Writable } from 'node:stream';
import type { Store } from '../interfaces/store.js';
import { listSnapshots, readManifest, resolveSnapshot } from '../catalog.js';
import type { Config } from '../config/load.js';
import { badInput, isAbortError, TykdrError, type ErrorKind } from '../errors.js';
import { artifactKey } from '../layout.js';
import type { Manifest } from '../manifest.js';
import { resolveDecryptionKeys, type DecryptionKeys } from '../restore/decryption-keys.js';
import { readArtifact } from '../restore/staging.js';
import type { Backends } from '../interfaces/backends.js';
import { checkManifestSignature, requireTrustedManifest, type ManifestSignatureCheck } from '../signing/manifest-signature.js';

export interface VerifyOptions {
  config: Config;
  backends: Pick<Backends, 'openStore'>;
  /** Default: the store in config. */
  store?: Store;
  /** 'all': every complete snapshot; otherwise ids or "latest" (an empty list means "latest"). */
  snapshots: 'all' | string[];
  /** Share of the (snapshot, object) pairs to check, 0-100; at least one pair when above 0. Default 100. */
  samplePercent?: number;
  /** age identity file; default encryption.identityFile. Passphrase snapshots use encryption.passphrase. */
  identityFile?: string;
  signal?: AbortSignal;
  progress?: VerifyProgress;
  /** Random source for sampling (tests make it deterministic). Default Math.random. */
  random?: () => number;
}

/** Progress of a verification; every method is optional. */
export interface VerifyProgress {
  objectStarted?(o: { snapshot: string; object: string; storedBytes: number }): void;
  /** Stored bytes read so far, in increments. */
  bytes?(n: number): void;
  objectDone?(check: ObjectCheck): void;
}

export interface ObjectCheck {
  snapshot: string;
  component: string;
  /** Object name in the snapshot folder, e.g. redis.rdb.zst.age. */
  object: string;
  key: string;
  status: 'ok' | 'failed';
  /** Stored size in the manifest. */
  storedBytes: number;
  /** On success: the plaintext bytes that decrypted and decompressed. */
  plaintextBytes?: number;
  /** On failure: what is wrong, and what to do. */
  message?: string;
  fix?: string;
  /** On failure: which kind of error (integrityError for altered, missing or undecryptable objects). */
  kind?: ErrorKind;
  durationMs: number;
}

export interface VerifyResult {
  location: string;
  samplePercent: number;
  /**
   * Each snapshot with its manifest signature check. With signing.verifyKeys configured, an unsigned or badly
   * signed snapshot is refused: none of its objects is checked, and it counts as failed.
   */
  snapshots: Array<{ id: string; createdAt: string; objects: number; checked: number; failed: number; signature: ManifestSignatureCheck }>;
  /** Snapshots refused for their manifest signature (with 'all'; named snapshots reject instead). */
  refused: Array<{ id: string; reason: string }>;
  /** Incomplete snapshots met with 'all': they have no manifest to verify against. */
  skipped: Array<{ id: string; reason: string }>;
  /**
   * Snapshots met with 'all' whose manifest is there but the store failed to give: nothing could be checked, and
   * nothing says they are incomplete. They count as failed (a store failure), never as skipped.
   */
  unreadable: Array<{ id: string; reason: string }>;
  /** Snapshots met with 'all' whose manifest is malformed or names another snapshot: failed (an integrity failure). */
  damaged: Array<{ id: string; reason: string }>;
  objects: ObjectCheck[];
  checked: number;
  failed: number;
  ok: boolean;
}

/**
 * Proves stored snapshots are restorable without restoring them. For each chosen (snapshot, object) pair:
 * the object exists (stat), its stored bytes hash to the manifest's SHA-256, and it decrypts (age
 * authenticates every chunk) and decompresses to the manifest's plaintext size. Objects stream through the
 * same read path a restore uses (readArtifact) into a sink that discards them: no staging file, bounded
 * memory, one object at a time.
 *
 * Returns one result per object checked; a failed object never stops the others. Only an abort, a store
 * that cannot list or read manifests, or missing keys (badInput, before any object is read) reject.
 */
export async function verifySnapshots(opts: VerifyOptions): Promise<VerifyResult> {
  const store = opts.store ?? opts.backends.openStore(opts.config.store);
  const { signal } = opts;
  const pct = opts.samplePercent ?? 100;
  if (!(pct >= 0 && pct <= 100)) throw badInput(`sample percentage ${pct} is not between 0 and 100`, 'pass --sample 10 for a 10% sample');

  const skipped: VerifyResult['skipped'] = [];
  const unreadable: VerifyResult['unreadable'] = [];
  const damaged: VerifyResult['damaged'] = [];
  const manifests: Manifest[] = [];
  if (opts.snapshots === 'all') {
    for (const s of await listSnapshots(store, signal)) {
      if (s.manifest) manifests.push(s.manifest);
      else if (s.unreadable) unreadable.push({ id: s.id, reason: s.problem ?? 'the store failed' });
      else if (s.damaged) damaged.push({ id: s.id, reason: s.problem ?? 'malformed' });
      else skipped.push({ id: s.id, reason: s.problem ?? 'incomplete' });
    }
  } else {
    const refs = opts.snapshots.length === 0 ? ['latest'] : opts.snapshots;
    for (const ref of refs) {
      const m = ref === 'latest' ? await resolveSnapshot(store, ref, signal) : await readManifest(store, ref, signal);
      if (!manifests.some((x) => x.id === m.id)) manifests.push(m);
    }
  }

  // Signatures first: a named snapshot that fails is refused outright (integrityError); with 'all', it is
  // recorded as refused and the others are still checked.
  const signatures = new Map<string, ManifestSignatureCheck>();
  const refused: VerifyResult['refused'] = [];
  for (const m of manifests) {
    const check = await checkManifestSignature(store, m, opts.config.signing, signal);
    if (opts.snapshots !== 'all') requireTrustedManifest(check, m.id);
    signatures.set(m.id, check);
    if (check.status === 'unsigned' || check.status === 'bad') refused.push({ id: m.id, reason: check.detail });
  }
  const trusted = manifests.filter((m) => !refused.some((r) => r.id === m.id));
  const pairs = trusted.flatMap((m) => Object.keys(m.components).sort().map((component) => ({ manifest: m, component })));
  const chosen = sample(pairs, pct, opts.random ?? Math.random);

  // Keys first: a missing identity is bad input, reported before anything is read.
  const keysFor = new Map<boolean, DecryptionKeys>();
  for (const { manifest } of chosen) {
    const p = manifest.encryption.passphrase;
    if (!keysFor.has(p)) keysFor.set(p, await resolveDecryptionKeys(opts.config, manifest, opts.identityFile));
  }

  const objects: ObjectCheck[] = [];
  for (const { manifest, component } of chosen) {
    signal?.throwIfAborted();
    const check = await checkObject(store, manifest, component, keysFor.get(manifest.encryption.passphrase)!, opts);
    objects.push(check);
    opts.progress?.objectDone?.(check);
  }

  const failed = objects.filter((o) => o.status === 'failed').length;
  return {
    location: store.location,
    samplePercent: pct,
    snapshots: manifests.map((m) => {
      const mine = objects.filter((o) => o.snapshot === m.id);
      return {
        id: m.id,
        createdAt: m.created_at,
        objects: Object.keys(m.components).length,
        checked: mine.length,
        failed: mine.filter((o) => o.status === 'failed').length,
        signature: signatures.get(m.id)!,
      };
    }),
    refused,
    skipped,
    unreadable,
    damaged,
    objects,
    checked: objects.length,
    failed,
    ok: failed === 0 && refused.length === 0 && unreadable.length === 0 && damaged.length === 0,
  };
}

async function checkObject(store: Store, manifest: Manifest, component: string, keys: DecryptionKeys, opts: VerifyOptions): Promise<ObjectCheck> {
  const a = manifest.components[component]!.artifact;
  const key = artifactKey(manifest.id, a.name);
  const started = Date.now();
  const base = { snapshot: manifest.id, component, object: a.name, key, storedBytes: a.stored_bytes };
  const failed = (message: string, fix: string | undefined, kind: ErrorKind): ObjectCheck => ({
    ...base,
    status: 'failed',
    message,
    ...(fix ? { fix } : {}),
    kind,
    durationMs: Date.now() - started,
  });
  opts.progress?.objectStarted?.({ snapshot: manifest.id, object: a.name, storedBytes: a.stored_bytes });
  try {
    if (!(await store.stat(key, { signal: opts.signal }))) {
      return failed(
        `object ${key} listed in the manifest is missing from the store (${store.location})`,
        'the snapshot cannot be restored in full; use another snapshot, and find what deleted the object (a lifecycle rule, a manual delete)',
        'integrityError',
      );
    }
    const read = await readArtifact({
      store,
      manifest,
      component,
      keys,
      sink: discard(),
      hashWholeObject: true,
      signal: opts.signal,
      onBytes: opts.progress?.bytes,
    });
    return { ...base, status: 'ok', plaintextBytes: read.plaintextBytes, durationMs: Date.now() - started };
  } catch (err) {
    if (isAbortError(err) || opts.signal?.aborted) throw err;
    if (err instanceof TykdrError) return failed(err.message, err.fix, err.kind);
    return failed(`${key}: ${(err as Error).message}`, undefined, 'internal');
  }
}

function discard(): Writable {
  return new Writable({
    write(_chunk, _enc, done) {
      done();
    },
  });
}

/** A random share of the items, in their original order: all at 100, none at 0, at least one above 0. */
export function sample<T>(items: readonly T[], percent: number, random: () => number): T[] {
  if (percent >= 100) return [...items];
  if (percent <= 0 || items.length === 0) return [];
  const n = Math.min(items.length, Math.max(1, Math.round((items.length * percent) / 100)));
  const idx = items.map((_, i) => i);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx
    .slice(0, n)
    .sort((x, y) => x - y)
    .map((i) => items[i]!);
}
