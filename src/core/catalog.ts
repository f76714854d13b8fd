import { setMaxListeners } from 'node:events';
import type { Store } from './interfaces/store.js';
import { badInput, integrityError, storeError, TykdrError } from './errors.js';
import { isSnapshotId, MANIFEST_NAME, MANIFEST_SIGNATURE_NAME, manifestKey, parseKey, SNAPSHOTS_PREFIX } from './layout.js';
import { MANIFEST_FORMAT, manifestSchema, type Manifest } from './manifest.js';
import { mapConcurrent } from './util/pool.js';

export interface SnapshotSummary {
  id: string;
  /** A snapshot is complete exactly when its manifest exists and parses. */
  complete: boolean;
  /** Manifest creation time for complete snapshots; for incomplete ones, the time in the id. */
  createdAt: Date;
  components: string[];
  objects: number;
  /** Every object of the snapshot in the store, the manifest and its signature included (what pruning it frees). */
  storedBytes: number;
  /** Complete snapshots: the compressed, encrypted data objects (the manifest's stored_bytes), as the backup summary says. */
  artifactBytes?: number;
  /** Complete snapshots: the data before compression and encryption (the manifest's plaintext_bytes). */
  dataBytes?: number;
  manifest?: Manifest;
  /** A manifest signature object (manifest.json.sig) exists; whether it is valid is checked elsewhere (signing/). */
  signed: boolean;
  /** Why an incomplete snapshot is incomplete. */
  problem?: string;
  /**
   * Its manifest is there but could not be read (the store failed, or the read was stopped): nothing says the
   * snapshot is incomplete, only that this listing could not tell. A "latest" never passes over it silently.
   */
  unreadable?: boolean;
  /** Its manifest is there but malformed, or names another snapshot: not an unfinished backup, a damaged one. */
  damaged?: boolean;
  /** Its manifest is in a format this tykdr does not read (a newer tykdr wrote it): neither incomplete nor damaged. */
  newerFormat?: boolean;
}

/**
 * A snapshot's state as listings print it: "complete"; "INCOMPLETE" (no manifest: the backup did not finish);
 * "UNREADABLE" (the store failed to give the manifest); "DAMAGED" (a malformed manifest); "NEWER FORMAT".
 */
export function snapshotStatus(s: Pick<SnapshotSummary, 'complete' | 'unreadable' | 'damaged' | 'newerFormat'>): string {
  if (s.complete) return 'complete';
  if (s.unreadable) return 'UNREADABLE';
  if (s.damaged) return 'DAMAGED';
  return s.newerFormat ? 'NEWER FORMAT' : 'INCOMPLETE';
}

/** tykdr-snapshot/N with N above this version's: a newer tykdr wrote it ("tykdr-snapshot/0" or "/x" is a damaged one). */
function isNewerFormat(format: string): boolean {
  const mine = Number(/\/(\d+)$/.exec(MANIFEST_FORMAT)![1]);
  const m = /^tykdr-snapshot\/(\d+)$/.exec(format);
  return m !== null && Number(m[1]) > mine;
}

/** The errors readManifest threw for a manifest of another format, told apart from its other bad-input errors. */
const newerFormatErrors = new WeakSet<Error>();

/** Manifests (or other per-snapshot objects) read at once: each read is a round trip to the store. */
export const MANIFEST_READS = 16;

/** Lists every snapshot in the store, newest first (by manifest time, never by name). */
export async function listSnapshots(store: Store, signal?: AbortSignal): Promise<SnapshotSummary[]> {
  const byId = new Map<string, { names: string[]; bytes: number }>();
  for await (const o of store.list(SNAPSHOTS_PREFIX, { signal })) {
    const k = parseKey(o.key);
    if (!k) continue;
    const e = byId.get(k.id) ?? { names: [], bytes: 0 };
    e.names.push(k.name);
    e.bytes += o.size;
    byId.set(k.id, e);
  }
  // The reads listen on one signal of their own (MANIFEST_READS reads hold two or so listeners each: more than an
  // AbortSignal takes before node warns), which the caller's aborts.
  const reads = new AbortController();
  setMaxListeners(4 * MANIFEST_READS, reads.signal);
  const relay = () => reads.abort(signal?.reason);
  if (signal?.aborted) relay();
  else signal?.addEventListener('abort', relay, { once: true });
  const summarize = async (id: string, e: { names: string[]; bytes: number }): Promise<SnapshotSummary> => {
    // Stopped: no further read starts (the store may not watch the signal itself).
    reads.signal.throwIfAborted();
    const base = { id, objects: e.names.length, storedBytes: e.bytes, signed: e.names.includes(MANIFEST_SIGNATURE_NAME) };
    if (!e.names.includes(MANIFEST_NAME)) {
      return {
        ...base,
        complete: false,
        createdAt: idTime(id),
        components: e.names.filter((n) => n !== MANIFEST_SIGNATURE_NAME).map((n) => n.split('.')[0]!),
        problem: 'no manifest: the backup did not finish',
      };
    }
    try {
      const manifest = await readManifest(store, id, reads.signal);
      const artifacts = Object.values(manifest.components).map((c) => c.artifact);
      return {
        ...base,
        complete: true,
        createdAt: new Date(manifest.created_at),
        components: Object.keys(manifest.components),
        artifactBytes: artifacts.reduce((n, a) => n + a.stored_bytes, 0),
        dataBytes: artifacts.reduce((n, a) => n + a.plaintext_bytes, 0),
        manifest,
      };
    } catch (err) {
      const unreadable = !(err instanceof TykdrError && (err.kind === 'integrityError' || err.kind === 'badInput'));
      const damaged = err instanceof TykdrError && err.kind === 'integrityError';
      const newerFormat = err instanceof Error && newerFormatErrors.has(err);
      return {
        ...base,
        complete: false,
        createdAt: idTime(id),
        components: [],
        problem: (err as Error).message,
        ...(unreadable ? { unreadable } : {}),
        ...(damaged ? { damaged } : {}),
        ...(newerFormat ? { newerFormat } : {}),
      };
    }
  };
  // The manifests are read MANIFEST_READS at a time: each read is a round trip to the store, and "latest" needs every
  // manifest's time (the order is by manifest time), so a store of hundreds of snapshots far away was that many round
  // trips one after another before a restore could begin.
  let out: SnapshotSummary[];
  try {
    out = await mapConcurrent([...byId], MANIFEST_READS, ([id, e]) => summarize(id, e));
  } finally {
    signal?.removeEventListener('abort', relay);
  }
  // Stopped while reading: the manifests not read are "unreadable", not a listing to act on.
  signal?.throwIfAborted();
  return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
}

/** Reads and validates one snapshot's manifest. */
export async function readManifest(store: Store, id: string, signal?: AbortSignal): Promise<Manifest> {
  if (!isSnapshotId(id)) {
    throw badInput(`"${id}" is not a snapshot id`, 'ids look like 20261121T093012Z-4f9a1c; list them with `tykdr snapshots`');
  }
  // Asked for at once: a store round trip less (the answer to stat decides which of the two is used).
  const getting = store.get(manifestKey(id), { signal });
  const drop = () => void getting.then((b) => b.destroy(), () => undefined);
  getting.catch(() => undefined);
  let info: Awaited<ReturnType<Store['stat']>>;
  try {
    info = await store.stat(manifestKey(id), { signal });
  } catch (err) {
    drop();
    throw err;
  }
  if (!info) {
    drop();
    let any = false;
    for await (const _ of store.list(`${SNAPSHOTS_PREFIX}${id}/`, { signal })) {
      any = true;
      break;
    }
    throw any
      ? badInput(`snapshot ${id} is incomplete (it has no manifest) in ${store.location}`, 'use a complete snapshot from `tykdr snapshots`')
      : badInput(`snapshot ${id} not found in ${store.location}`, 'list the snapshots with `tykdr snapshots`');
  }
  const body = await getting;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw integrityError(`manifest of snapshot ${id} is not valid JSON`, 'the snapshot cannot be trusted; use another one', err);
  }
  // Another format (a newer tykdr wrote it) is not a damaged manifest: this version cannot read it, that is all.
  const format = (json as { format?: unknown } | null)?.format;
  if (typeof format === 'string' && format !== MANIFEST_FORMAT && isNewerFormat(format)) {
    const err = badInput(`manifest of snapshot ${id} is in format ${format}; this tykdr reads ${MANIFEST_FORMAT}`, 'use the tykdr version that wrote the snapshot, or a newer one');
    newerFormatErrors.add(err);
    throw err;
  }
  // jitless (see parseConfig): faster here even for 200 manifests in one run (12-13 against 14 ms).
  const parsed = manifestSchema.safeParse(json, { jitless: true });
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw integrityError(`manifest of snapshot ${id} is malformed at ${i.path.join('.')}: ${i.message}`, 'use another snapshot');
  }
  if (parsed.data.id !== id) throw integrityError(`manifest in folder ${id} names snapshot ${parsed.data.id}`, 'use another snapshot');
  readBytes.set(parsed.data, bytes);
  return parsed.data;
}

/** The exact bytes each manifest read here was parsed from: a signature is checked over these, never a re-read. */
const readBytes = new WeakMap<Manifest, Buffer>();

/** The bytes `manifest` was parsed from, when it came from readManifest (or listSnapshots/resolveSnapshot). */
export function manifestBytes(manifest: Manifest): Buffer | undefined {
  return readBytes.get(manifest);
}

/** "latest" (newest complete) or an explicit id. */
export async function resolveSnapshot(store: Store, ref: string, signal?: AbortSignal, passedOver?: string[]): Promise<Manifest> {
  if (ref !== 'latest') return readManifest(store, ref, signal);
  const latest = newestComplete(await listSnapshots(store, signal), store, passedOver);
  if (!latest?.manifest) throw badInput(`no complete snapshot in ${store.location}`, 'run `tykdr backup` first');
  return latest.manifest;
}

/**
 * The first complete snapshot of a listing (newest first, as listSnapshots gives it), unless a newer one's manifest
 * could not be read: then the store's error, never an older snapshot chosen in silence (a restore of "latest" would
 * lose the data of every snapshot passed over). A newer snapshot whose manifest is damaged, or in a format this tykdr
 * does not read, is passed over, and said in `passedOver` (for the restore's warnings): its data is lost to this restore.
 */
export function newestComplete(list: SnapshotSummary[], store: Store, passedOver?: string[]): SnapshotSummary | undefined {
  for (const s of list) {
    if (s.complete) return s;
    if (s.damaged) passedOver?.push(`snapshot ${s.id}, newer, was passed over: its manifest is damaged (${s.problem}); \`tykdr verify --all\` reports it`);
    if (s.newerFormat) passedOver?.push(`snapshot ${s.id}, newer, was passed over: ${s.problem}; restore it with the tykdr version that wrote it`);
    if (s.unreadable) {
      throw storeError(
        `the manifest of snapshot ${s.id} in ${store.location} could not be read (${s.problem}), so whether it is the newest complete snapshot is unknown`,
        'retry when the store answers again, or name the snapshot to restore with --snapshot ID (`tykdr snapshots` lists them)',
      );
    }
  }
  return undefined;
}

function idTime(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  if (!m) throw storeError(`bad snapshot id ${id}`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}
