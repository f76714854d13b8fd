import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import type { Store } from './interfaces/store.js';
import type { Config } from './config/load.js';
import type { Backends } from './interfaces/backends.js';
import { describeKeys, resolveEncryptionKeys } from './encryption-keys.js';
import { badInput, isAbortError, TykdrError } from './errors.js';
import { artifactKey, artifactName, manifestKey, manifestSignatureKey, newSnapshotId, snapshotPrefix } from './layout.js';
import { MANIFEST_FORMAT, serializeManifest, type Manifest, type ManifestComponent } from './manifest.js';
import { writeArtifact } from './pipeline.js';
import { loadSigner } from './signing/keys.js';
import { TOOL_VERSION } from './version.js';

/** Progress reports; the default is silent. Printers live with the commands. */
export interface BackupProgress {
  started?(id: string, components: string[]): void;
  componentStarted?(component: string, kind: string): void;
  bytes?(component: string, plaintextBytes: number): void;
  componentDone?(component: string, entry: ManifestComponent): void;
}

export interface BackupOptions {
  config: Config;
  /** Stores and sources (src/wiring.ts); only openStore and openSources are used. */
  backends: Pick<Backends, 'openStore' | 'openSources'>;
  /** Component names to back up; all configured ones when empty. */
  components?: string[];
  signal?: AbortSignal;
  progress?: BackupProgress;
  now?: () => Date;
}

export interface BackupResult {
  id: string;
  location: string;
  manifest: Manifest;
  /** The public key (tykdr-ed25519:...) whose private key signed the manifest, when signing.keyFile is set. */
  signedBy?: string;
}

/**
 * Takes one snapshot: checks the store and every source first, streams each component's artifact
 * (in parallel up to config.parallelism), then writes the manifest last. If anything fails or the
 * signal aborts, the manifest is never written and this snapshot's objects are deleted (best effort;
 * whatever stays behind has no manifest and is therefore incomplete). Earlier snapshots are never touched.
 */
export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  const { config } = opts;
  const now = opts.now ?? (() => new Date());
  const names = selectComponents(config, opts.components ?? []);
  const keys = await resolveEncryptionKeys(config);
  // A bad signing key fails here, before anything is written.
  const signer = config.signing.keyFile === undefined ? undefined : await loadSigner(config.signing.keyFile);
  const store = opts.backends.openStore(config.store);
  await store.check(opts.signal);
  const sources = (await Promise.all(names.map((n) => opts.backends.openSources(config.components[n]!)))).flat();
  await Promise.all(sources.map((s) => s.check(opts.signal)));

  const createdAt = now();
  const id = newSnapshotId(createdAt);
  opts.progress?.started?.(id, names);
  const ac = new AbortController();
  const onAbort = () => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let tyk: Record<string, unknown> | undefined;
  const entries: Record<string, ManifestComponent> = {};
  try {
    await forEachLimited(sources, config.parallelism, async (source) => {
      // A source may be an extra artifact of a configured component (e.g. "<name>-globals").
      const cfg = config.components[source.configName ?? source.component]!;
      opts.progress?.componentStarted?.(source.component, source.kind);
      const started = now();
      try {
        const artifact = await source.open(ac.signal);
        const name = artifactName(source.component, artifact.format, config.compression.algorithm);
        const written = await writeArtifact({
          source: artifact.stream,
          store,
          key: artifactKey(id, name),
          compression: config.compression,
          keys,
          signal: ac.signal,
          onPlaintextBytes: (n) => opts.progress?.bytes?.(source.component, n),
        });
        const facts = await artifact.finish();
        if (facts.tyk) tyk = facts.tyk;
        const objective = config.tiers[cfg.tier];
        const entry: ManifestComponent = {
          kind: source.kind,
          ...(source.configName ? { config_component: source.configName } : {}),
          tier: cfg.tier,
          objective: { rto_seconds: objective.rtoMs / 1000, rpo_seconds: objective.rpoMs / 1000 },
          consistent_at: artifact.consistentAt.toISOString(),
          started_at: started.toISOString(),
          duration_ms: now().getTime() - started.getTime(),
          artifact: {
            name,
            format: artifact.format,
            compression: config.compression.algorithm,
            encryption: 'age',
            plaintext_bytes: written.plaintextBytes,
            stored_bytes: written.storedBytes,
            sha256: written.sha256,
            store_retries: written.storeRetries,
          },
          source: facts.source,
        };
        entries[source.component] = entry;
        opts.progress?.componentDone?.(source.component, entry);
      } catch (err) {
        ac.abort(err);
        throw attribute(err, source.component);
      }
    });
    opts.signal?.throwIfAborted();
  } catch (err) {
    await discard(store, id);
    if (opts.signal?.aborted || isAbortError(err)) {
      throw new TykdrError('interrupted', `backup ${id} interrupted; no manifest was written and its objects were removed`, { cause: err });
    }
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }

  const points = Object.values(entries).map((e) => Date.parse(e.consistent_at));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    id,
    created_at: createdAt.toISOString(),
    completed_at: now().toISOString(),
    tool: { name: 'tykdr', version: TOOL_VERSION },
    host: hostname(),
    encryption: { scheme: 'age-v1', ...describeKeys(keys) },
    ...(tyk ? { tyk } : {}),
    consistency_spread_ms: points.length ? Math.max(...points) - Math.min(...points) : 0,
    components: Object.fromEntries(sources.map((src) => [src.component, entries[src.component]!])),
  };
  // The manifest goes last: its presence is what makes the snapshot complete. Its signature (over the
  // exact bytes) goes just before it, so a complete snapshot is never without the signature it was meant to have.
  const manifestBytes = Buffer.from(serializeManifest(manifest));
  try {
    if (signer) {
      await store.put(manifestSignatureKey(id), Readable.from([signer.sign(manifestBytes)]), { signal: opts.signal, contentType: 'application/octet-stream' });
    }
    await store.put(manifestKey(id), Readable.from([manifestBytes]), {
      signal: opts.signal,
      contentType: 'application/json',
    });
  } catch (err) {
    await discard(store, id);
    if (opts.signal?.aborted || isAbortError(err)) {
      throw new TykdrError('interrupted', `backup ${id} interrupted while writing its manifest; its objects were removed`, { cause: err });
    }
    throw err;
  }
  return { id, location: store.location, manifest, ...(signer ? { signedBy: signer.publicKey } : {}) };
}

function selectComponents(config: Config, wanted: string[]): string[] {
  const all = Object.keys(config.components);
  if (wanted.length === 0) return all;
  for (const w of wanted) {
    if (!all.includes(w)) {
      throw badInput(`--component "${w}" is not configured in ${config.file}`, `use one of: ${all.join(', ')}`);
    }
  }
  return [...new Set(wanted)];
}

/** Prefixes errors that do not say which component they came from. */
function attribute(err: unknown, component: string): unknown {
  if (err instanceof TykdrError && !err.message.startsWith('components.')) {
    return new TykdrError(err.kind, `components.${component}: ${err.message}`, { fix: err.fix, cause: err.cause });
  }
  return err;
}

async function discard(store: Store, id: string): Promise<void> {
  try {
    for await (const o of store.list(snapshotPrefix(id))) await store.delete(o.key);
  } catch {
    // Best effort: objects left behind have no manifest, so the snapshot is incomplete by definition.
  }
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const errors: unknown[] = [];
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  // The first real failure wins over the aborts it caused in siblings.
  if (errors.length) throw errors.find((e) => !isAbortError(e)) ?? errors[0];
}
