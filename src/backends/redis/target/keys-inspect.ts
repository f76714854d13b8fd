import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { readKeysStream, type KeyRecord, type KeysHeader, type KeysTrailer } from '../formats/keys-reader.js';
import { redisTypeOf } from '../formats/rdb-constants.js';
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

type InspectOptions = { restored: ReadonlySet<KeyClass>; sampleSize: number; expectation: boolean; signal?: AbortSignal };

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
  let header: KeysHeader | null = null;
  const { trailer, ...rest } = await inspectRecords<KeysTrailer>(readKeysStream(createReadStream(file, { highWaterMark: 1 << 20 }), (h) => (header = h)), o);
  const h = header as KeysHeader | null;
  if (h === null) throw new Error('keys stream without a header'); // the reader throws first; for the type checker
  return {
    ...rest,
    open: () => readKeysStream(createReadStream(file, { highWaterMark: 1 << 20 })),
    header: h,
    trailer,
    writtenBy: h.redisVersion,
    payloadVersion: Math.max(h.payloadRdbVersion, trailer.maxPayloadRdbVersion),
  };
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
    open: (signal) => rdbKeyRecords(file, signal, { reread: true }),
    header: null,
    trailer: null,
    writtenBy: facts.aux['redis-ver'] ?? '',
    payloadVersion: facts.rdbVersion,
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
