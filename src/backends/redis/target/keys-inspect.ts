import { createHash } from 'node:crypto';
import { integrityError } from '../../../core/errors.js';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { readKeysStream, type KeyRecord, type KeysHeader, type KeysTrailer } from '../formats/keys-reader.js';
import { RDB_TYPE, redisTypeOf } from '../formats/rdb-constants.js';
import { cutKeyRecord } from '../formats/dump-payload.js';
import { RdbInspector } from '../formats/rdb-inspector.js';
import { rdbKeyRecords } from '../formats/rdb-records.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import { KeyExpectation, KeySet } from './key-expectation.js';
import { Reservoir } from './reservoir.js';
import { MAX_COMPARED_BYTES } from './value-fingerprint.js';

/** A record kept for redis-sample: the snapshot's DUMP payload (or its hash, when large). Keys are credentials: never print them. */
export interface PayloadSampleEntry {
  db: number;
  key: Buffer;
  cls: KeyClass;
  /** Absolute Unix ms; null when the key does not expire. */
  expiresAtMs: number | null;
  /** The Redis type the payload holds (from its RDB type byte). */
  type: string;
  bytes: number;
  sha256: string;
  /** The payload itself, for a decoded comparison when bytes differ; null over MAX_COMPARED_BYTES. */
  payload: Buffer | null;
}

export interface KeysInspection {
  /** The staged records again, from the start (the restore reads them a second time). */
  open(signal?: AbortSignal): AsyncIterable<KeyRecord[]>;
  /** Keys streams: their header and trailer; null for records cut from an RDB. */
  header: KeysHeader | null;
  trailer: KeysTrailer | null;
  /** Who wrote the snapshot (the source's Redis version), when known. */
  writtenBy: string;
  /** The RDB version the target must load: the highest of header and trailer. */
  payloadVersion: number;
  /** Database indexes the records are in. */
  dbs: number[];
  records: number;
  /** Records per class (all classes in the stream). */
  perClass: Record<KeyClass, number>;
  /** Records naming a key already seen (SCAN may list a key twice): not counted twice in the expectation. */
  duplicates: number;
  expectation: KeyExpectation | null;
  sample: { requested: number; population: number; entries: PayloadSampleEntry[]; expiredBeforeRead: number } | null;
}

/** The payload type as TYPE answers it ("hash"), from the RDB type byte that starts a DUMP payload. */
export function payloadType(payload: Buffer): string {
  return (payload.length > 0 ? redisTypeOf(payload[0]!) : undefined) ?? 'unknown';
}

export type InspectOptions = {
  restored: ReadonlySet<KeyClass>;
  sampleSize: number;
  expectation: boolean;
  signal?: AbortSignal;
  /**
   * An RDB whose CRC-64 the backup checked as it streamed it (the manifest's source.rdb_checksum is "ok"): the staged
   * bytes matched the manifest's SHA-256, so they are the bytes that passed, and the CRC-64 is not computed again.
   */
  crcCheckedAtBackup?: boolean;
};

/** For inspectRdbRecords: a handle opened before (read from its start), payloads built only for the sample. */
type RdbInspectOptions = InspectOptions & { handle?: FileHandle; inspectOnly?: boolean };

/**
 * Reads the staged keys stream once, whole, before any target is touched: the reader checks structure,
 * record count and SHA-256 (a cut or damaged stream throws integrityError here). On the way it counts
 * records per class and database, tallies the expectation for redis-key-counts (each key once), and keeps
 * a uniform random sample of live records of the restored classes for redis-sample. Memory: the sample,
 * the expectation's expiry seconds, and (for the expectation) ~16 bytes per key.
 */
export async function inspectKeysFile(file: string, o: InspectOptions): Promise<KeysInspection> {
  return keysInspectionOf(file, await inspectKeysStream(createReadStream(file, { highWaterMark: 1 << 20 }), o));
}

/** inspectKeysFile's read of a keys stream from any source (the file, or the plaintext as it is staged). */
export async function inspectKeysStream(source: AsyncIterable<Buffer>, o: InspectOptions): Promise<Omit<KeysInspection, 'open'>> {
  let header: KeysHeader | null = null;
  const { trailer, ...rest } = await inspectRecords<KeysTrailer>(readKeysStream(source, (h) => (header = h)), o);
  const h = header as KeysHeader | null;
  if (h === null) throw new Error('keys stream without a header'); // the reader throws first; for the type checker
  return {
    ...rest,
    header: h,
    trailer,
    writtenBy: h.redisVersion,
    payloadVersion: Math.max(h.payloadRdbVersion, trailer.maxPayloadRdbVersion),
  };
}

/** The inspection of the keys stream staged at `file`, its records read again from there. */
export function keysInspectionOf(file: string, read: Omit<KeysInspection, 'open'>): KeysInspection {
  // The first read checked the stream whole (its SHA-256 included): the write's second read does not hash it again.
  return { ...read, open: () => readKeysStream(createReadStream(file, { highWaterMark: 1 << 20 }), undefined, { digest: false }) };
}

/**
 * The same inspection of a staged RDB, its keys cut into RESTORE payloads (rdb-records.ts): the RDB's
 * structure and CRC-64 are checked whole here, before any target is touched, and a module value is refused
 * (unless `inspectOnly`: see rdbKeyRecords). An RDB holds each key of a database once, so keys are not
 * tracked for duplicates.
 */
export async function inspectRdbRecords(file: string, o: RdbInspectOptions): Promise<KeysInspection> {
  // Payloads are built only for the sample here: the restore cuts them again as it writes.
  const records = rdbKeyRecords(o.handle ?? file, o.signal, { inspectOnly: o.inspectOnly, lazyPayloads: true, name: file });
  const { trailer: facts, ...rest } = await inspectRecords(records, { ...o, uniqueKeys: true });
  return {
    ...rest,
    // The staged file is private and was just checked whole (CRC-64 included): the second read skips the file's CRC.
    // Lazy payloads: the write puts each one straight into its RESTORE batch (keys-restore.ts).
    open: (signal) => rdbKeyRecords(file, signal, { reread: true, lazyPayloads: true }),
    header: null,
    trailer: null,
    writtenBy: facts.aux['redis-ver'] ?? '',
    payloadVersion: facts.rdbVersion,
  };
}

/** What a file-level restore needs from its staged RDB: the expectation for redis-key-counts and the payload sample. */
export type RdbEvidence = Pick<KeysInspection, 'records' | 'perClass' | 'dbs' | 'expectation' | 'sample'> & {
  /** The RDB's version and the Redis that wrote it (its redis-ver AUX field, '' when absent). */
  rdbVersion: number;
  writtenBy: string;
  /** Keys holding module values (RDB type 7): a live restore cannot RESTORE them. */
  moduleValues: number;
};

const EVIDENCE_CHUNK = 1 << 20;

/** "apikey-" (Tyk's sessions, most keys of a gateway's Redis): classifyKey's first rule, without decoding the key. */
function isApiKey(k: Buffer): boolean {
  return k.length >= 7 && k[0] === 0x61 && k[1] === 0x70 && k[2] === 0x69 && k[3] === 0x6b && k[4] === 0x65 && k[5] === 0x79 && k[6] === 0x2d;
}

/**
 * rdb-file mode's evidence from the staged RDB, in one read: keys counted per class, the expectation tallied,
 * and a uniform sample of live keys of the restored classes kept as DUMP payloads. The same figures as
 * inspectRdbRecords with `inspectOnly`, for a fraction of its CPU: the inspector lends each key (no copy, no
 * record object per key) and only a sampled key's record is cut into a payload. The file's structure is checked
 * on the way (a damaged file throws); its CRC-64 is not (the target checks it as it loads the file, and staging
 * proved the stored bytes' SHA-256). A module value drawn for the sample is dropped from it (not comparable).
 * Memory: the sample, one chunk, the open key record when it is drawn (a key record not drawn is not held).
 */
export async function inspectRdbEvidence(
  file: string | FileHandle | AsyncIterable<Buffer>,
  o: InspectOptions & { name?: string; chunkBytes?: number; checksum?: boolean },
): Promise<RdbEvidence> {
  const chunkBytes = o.chunkBytes ?? EVIDENCE_CHUNK;
  const perClass = emptyClassCounts();
  const exp = o.expectation ? new KeyExpectation(Date.now()) : null;
  const drawn = new Reservoir<PayloadSampleEntry | null>(o.sampleSize);
  const sampling = o.sampleSize > 0;
  let records = 0;
  let moduleValues = 0;
  let now = Date.now();
  // File bytes [heldFrom, offset) in chunks: from the end of the last key record on, except inside a record not drawn.
  let held: Buffer[] = [];
  let heldFrom = 0;
  let offset = 0;
  const header = Buffer.alloc(9);
  let headerFill = 0;
  /** 0: between key records; 1: inside one not drawn; 2: inside a drawn one (its slot in `slot`). */
  let state = 0;
  let slot = -1;
  let meta: { db: number; cls: KeyClass; expiresAtMs: number | null } | null = null;
  const cut = (start: number, end: number): void => {
    if (start < heldFrom) throw new Error(`inspectRdbEvidence: record at ${start} not held (from ${heldFrom})`);
    const parts: Buffer[] = [];
    let base = heldFrom;
    for (const c of held) {
      const cEnd = base + c.length;
      if (cEnd > start && base < end) parts.push(c.subarray(Math.max(start - base, 0), Math.min(end, cEnd) - base));
      if (cEnd >= end) break;
      base = cEnd;
    }
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, end - start);
    const { key, payload } = cutKeyRecord(bytes, start, Number(header.toString('latin1', 5, 9)));
    const m = meta!;
    drawn.put(slot, payload === null ? null : {
      db: m.db, key, cls: m.cls, expiresAtMs: m.expiresAtMs, type: payloadType(payload), bytes: payload.length,
      sha256: createHash('sha256').update(payload).digest('hex'),
      payload: payload.length <= MAX_COMPARED_BYTES ? payload : null,
    });
  };
  const inspector = new RdbInspector({
    checksum: o.checksum === true,
    borrowKeys: true,
    onKey: (db, key, type, expiresAtMs) => {
      records++;
      if (type === RDB_TYPE.MODULE_2) moduleValues++;
      const cls = isApiKey(key) ? 'must' : classifyKey(key);
      perClass[cls]++;
      exp?.add(db, cls, expiresAtMs);
      state = 1;
      if (sampling && o.restored.has(cls) && (expiresAtMs === null || expiresAtMs > now)) {
        slot = drawn.claim();
        if (slot >= 0) {
          state = 2;
          meta = { db, cls, expiresAtMs };
        }
      }
    },
    onRecordBounds: (start, end) => {
      if (state === 2) cut(start, end);
      state = 0;
      while (held.length > 1 && heldFrom + held[0]!.length <= end) heldFrom += held.shift()!.length;
    },
  });
  // A path, an open file, or the plaintext as it streams past (a load by replication decompressing into the target).
  const stream: AsyncIterable<unknown> =
    typeof file === 'string'
      ? createReadStream(file, { highWaterMark: chunkBytes, signal: o.signal })
      : 'createReadStream' in file
        ? file.createReadStream({ start: 0, highWaterMark: chunkBytes, signal: o.signal })
        : file;
  for await (const c of stream) {
    const chunk = c as Buffer;
    o.signal?.throwIfAborted();
    if (headerFill < 9) headerFill += chunk.copy(header, headerFill, 0, Math.min(chunk.length, 9 - headerFill));
    now = Date.now();
    held.push(chunk);
    offset += chunk.length;
    inspector.update(chunk);
    if (state === 1) {
      // Inside a key record that was not drawn: nothing before its end is needed again.
      held = [];
      heldFrom = offset;
    }
  }
  let facts;
  try {
    facts = inspector.complete();
  } catch (err) {
    throw integrityError(`the staged RDB ${o.name ?? (typeof file === 'string' ? file : '')} is not whole: ${(err as Error).message}`, 'stage the snapshot again; if it persists the snapshot is damaged', err);
  }
  const entries = drawn.items.filter((e): e is PayloadSampleEntry => e !== null);
  return {
    records,
    perClass,
    dbs: Object.keys(facts.databases).map(Number).sort((a, b) => a - b),
    expectation: exp,
    sample: sampling ? { requested: o.sampleSize, population: drawn.offered, entries, expiredBeforeRead: 0 } : null,
    rdbVersion: facts.rdbVersion,
    writtenBy: facts.aux['redis-ver'] ?? '',
    moduleValues,
  };
}

/**
 * A live restore's look at the staged RDB before its first write, in the lean read of inspectRdbEvidence (CRC-64
 * included, unless the backup checked it: no server loads this file), the counts, the expectation and the sample.
 * A file holding a module value is read again the thorough way, which refuses it naming the key's database and
 * module type. The restore then cuts every record a second time as it writes (open()).
 */
export async function inspectRdbForLive(file: string, o: InspectOptions): Promise<KeysInspection> {
  return inspectionFromStaging(file, await inspectRdbEvidence(file, { ...o, name: file, checksum: o.crcCheckedAtBackup !== true }), o);
}

/**
 * The plaintext as it is staged, read the way inspectRdbForLive (an RDB) or inspectKeysFile (a keys stream) reads the
 * file (`o` must be the options the restore will pass them): `side` gets every plaintext chunk.
 */
export async function readWhileStaged(format: 'rdb' | 'keys', side: AsyncIterable<Buffer>, name: string, o: InspectOptions): Promise<StagedRead> {
  if (format === 'keys') return { format, read: await inspectKeysStream(side, o) };
  return { format, ev: await inspectRdbEvidence(side, { ...o, name, checksum: o.crcCheckedAtBackup !== true }) };
}

/** A live restore's read of its staged artifact, made while it was staged (readWhileStaged). */
export type StagedRead = { format: 'rdb'; ev: RdbEvidence } | { format: 'keys'; read: Omit<KeysInspection, 'open'> };

/** inspectRdbForLive's result from its lean read `ev` of `file` (made while it was staged, or just now). */
export async function inspectionFromStaging(file: string, ev: RdbEvidence, o: InspectOptions): Promise<KeysInspection> {
  if (ev.moduleValues > 0) return inspectRdbRecords(file, o);
  return {
    records: ev.records,
    perClass: ev.perClass,
    dbs: ev.dbs,
    expectation: ev.expectation,
    sample: ev.sample,
    // An RDB holds each key of a database once.
    duplicates: 0,
    // The file was just checked whole (CRC-64 included): the second read skips the CRC. Lazy payloads: see above.
    open: (signal) => rdbKeyRecords(file, signal, { reread: true, lazyPayloads: true }),
    header: null,
    trailer: null,
    writtenBy: ev.writtenBy,
    payloadVersion: ev.rdbVersion,
  };
}

async function inspectRecords<T>(it: AsyncGenerator<KeyRecord[], T, undefined>, o: InspectOptions & { uniqueKeys?: boolean }): Promise<Omit<KeysInspection, 'open' | 'header' | 'trailer' | 'writtenBy' | 'payloadVersion'> & { trailer: T }> {
  const perClass = emptyClassCounts();
  const dbs = new Set<number>();
  const exp = o.expectation ? new KeyExpectation(Date.now()) : null;
  const seen = new Map<number, KeySet>();
  const drawn = new Reservoir<PayloadSampleEntry>(o.sampleSize);
  let duplicates = 0;
  let records = 0;
  let trailer: T;
  for (;;) {
    o.signal?.throwIfAborted();
    const r = await it.next();
    if (r.done) {
      trailer = r.value;
      break;
    }
    const now = Date.now();
    for (const rec of r.value) {
      records++;
      const cls = classifyKey(rec.key);
      perClass[cls]++;
      dbs.add(rec.db);
      const expiresAtMs = rec.expireAt < 0 ? null : rec.expireAt;
      if (exp && o.uniqueKeys) {
        exp.add(rec.db, cls, expiresAtMs);
      } else if (exp) {
        let set = seen.get(rec.db);
        if (!set) seen.set(rec.db, (set = new KeySet()));
        if (set.add(rec.key)) exp.add(rec.db, cls, expiresAtMs);
        else duplicates++;
      }
      if (o.sampleSize > 0 && o.restored.has(cls) && (expiresAtMs === null || expiresAtMs > now)) {
        drawn.offerLazy(() => ({
          db: rec.db,
          key: Buffer.from(rec.key),
          cls,
          expiresAtMs,
          type: payloadType(rec.payload),
          bytes: rec.payload.length,
          sha256: createHash('sha256').update(rec.payload).digest('hex'),
          payload: rec.payload.length <= MAX_COMPARED_BYTES ? Buffer.from(rec.payload) : null,
        }));
      }
    }
  }
  return {
    trailer,
    dbs: [...dbs].sort((a, b) => a - b),
    records,
    perClass,
    duplicates,
    expectation: exp,
    // An empty payload is a module value seen by an inspectOnly pass (not cut): drawn, but not comparable.
    sample: o.sampleSize > 0 ? { requested: o.sampleSize, population: drawn.offered, entries: drawn.items.filter((e) => e.bytes > 0), expiredBeforeRead: 0 } : null,
  };
}
