import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { integrityError } from '../../core/errors.js';
import { Crc64Ecma } from './crc64-ecma.js';
import { mongoDriver } from './driver.js';

/**
 * The mongodump archive format (mongo-tools common/archive/spec.md):
 *
 *   magic 6D E2 99 81 | header doc | collection-metadata doc* | FF FF FF FF |
 *   ( namespace-header doc {db, collection, EOF:false} doc+ FF FF FF FF
 *   | eof-header doc {db, collection, EOF:true, CRC} FF FF FF FF )*
 *
 * Segments of different namespaces may interleave (parallel dumps). The EOF header's CRC is CRC-64/XZ over
 * every document byte of its namespace.
 */
const MAGIC = Buffer.from([0x6d, 0xe2, 0x99, 0x81]);
const TERMINATOR = -1;
/** Headers and metadata are small; a document is at most 16 MiB (BSON) plus mongodump's slack. */
const MAX_HEADER_BYTES = 16 * 1024 * 1024;
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024;

export interface ArchiveIndex {
  name: string;
  key: Record<string, unknown>;
  unique?: boolean;
  /** Every other option of the index spec (v excluded). */
  options: Record<string, unknown>;
}

export interface ArchiveCollection {
  db: string;
  collection: string;
  /** "collection", "view", "timeseries" (or "" from older tools). */
  type: string;
  options: Record<string, unknown>;
  indexes: ArchiveIndex[];
}

export interface ArchivePrelude {
  formatVersion: string;
  serverVersion: string;
  toolVersion: string;
  concurrentCollections: number;
  collections: ArchiveCollection[];
}

export interface ArchiveNamespaceFacts {
  documents: number;
  /** BSON bytes of its documents. */
  bytes: number;
  /** CRC-64 of the documents, hex; equal to the one mongodump wrote. */
  crc: string;
}

export interface ArchiveFacts extends ArchivePrelude {
  /** Per "db.collection" that had an EOF header. */
  namespaces: Record<string, ArchiveNamespaceFacts>;
  archiveBytes: number;
}

type State = 'magic' | 'header' | 'prelude' | 'body' | 'eof-terminator' | 'data';

interface OpenNamespace {
  name: string;
  crc: Crc64Ecma;
  documents: number;
  bytes: number;
}

export interface ArchiveInspectorOptions {
  /**
   * Awaited when the input ends, before the end is judged: e.g. the producer's exit status. A rejection
   * becomes the stream's error (and wins over a truncation it probably caused).
   */
  beforeEnd?: () => Promise<void>;
}

/**
 * Checks a mongodump archive as its bytes arrive: structure, document counts per namespace, and every
 * namespace's CRC-64. Memory is bounded by the largest header (documents are streamed through the CRC,
 * never buffered). `feed` and `end` throw an integrityError when the archive is malformed, a CRC differs,
 * or it ends anywhere but after a complete namespace.
 */
export class ArchiveParser {
  #state: State = 'magic';
  /** Buffer for the item being collected (magic, a length, a header document). */
  #buf = Buffer.alloc(4);
  #have = 0;
  #need = 4;
  /** Bytes of the current document still to stream through the CRC. */
  #streaming = 0;
  #lastByte = 0;
  #offset = 0;
  #prelude: ArchivePrelude = { formatVersion: '', serverVersion: '', toolVersion: '', concurrentCollections: 0, collections: [] };
  #preludeDone = false;
  #open = new Map<string, OpenNamespace>();
  #current: OpenNamespace | null = null;
  #done: Record<string, ArchiveNamespaceFacts> = {};

  /** The header and collection metadata, once they have been read (null before). */
  get prelude(): ArchivePrelude | null {
    return this.#preludeDone ? this.#prelude : null;
  }

  /** What the archive held so far; all of it once `end` returned. */
  facts(): ArchiveFacts {
    return { ...this.#prelude, namespaces: { ...this.#done }, archiveBytes: this.#offset };
  }

  feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#streaming > 0) {
        const n = Math.min(this.#streaming, chunk.length - off);
        const part = chunk.subarray(off, off + n);
        this.#current!.crc.update(part);
        this.#lastByte = part[n - 1]!;
        this.#streaming -= n;
        off += n;
        this.#offset += n;
        if (this.#streaming === 0) this.#documentDone();
        continue;
      }
      const take = Math.min(this.#need - this.#have, chunk.length - off);
      chunk.copy(this.#buf, this.#have, off, off + take);
      this.#have += take;
      off += take;
      this.#offset += take;
      if (this.#have === this.#need) this.#step();
    }
  }

  /** Collect `n` more bytes into a fresh buffer (keeping the first `keep` bytes of the current one). */
  #collect(n: number, keep = 0): void {
    const buf = Buffer.alloc(n);
    this.#buf.copy(buf, 0, 0, keep);
    this.#buf = buf;
    this.#have = keep;
    this.#need = n;
  }

  #step(): void {
    const buf = this.#buf;
    switch (this.#state) {
      case 'magic':
        if (!buf.equals(MAGIC)) {
          this.#fail(`it does not start with the mongodump archive magic 6D E2 99 81 (found ${buf.toString('hex').replace(/(..)(?!$)/g, '$1 ').toUpperCase()})`);
        }
        this.#state = 'header';
        this.#collect(4);
        return;
      case 'header':
      case 'prelude':
      case 'body':
        if (this.#have === 4 && this.#need === 4) {
          const len = buf.readInt32LE(0);
          if (len === TERMINATOR) {
            if (this.#state !== 'prelude') this.#fail(`unexpected terminator at byte ${this.#offset - 4}`);
            this.#state = 'body';
            this.#preludeDone = true;
            this.#collect(4);
            return;
          }
          if (len < 5 || len > MAX_HEADER_BYTES) this.#fail(`a ${this.#state} document at byte ${this.#offset - 4} claims ${len} bytes`);
          this.#collect(len, 4);
          return;
        }
        this.#document(buf);
        return;
      case 'eof-terminator':
        if (buf.readInt32LE(0) !== TERMINATOR) this.#fail(`no terminator after an EOF header at byte ${this.#offset - 4}`);
        this.#state = 'body';
        this.#collect(4);
        return;
      case 'data': {
        const len = buf.readInt32LE(0);
        if (len === TERMINATOR) {
          this.#current = null;
          this.#state = 'body';
          this.#collect(4);
          return;
        }
        if (len < 5 || len > MAX_DOCUMENT_BYTES) this.#fail(`a document of ${this.#current!.name} at byte ${this.#offset - 4} claims ${len} bytes`);
        this.#current!.crc.update(buf);
        this.#streaming = len - 4;
        this.#have = 0;
        this.#need = 4;
        return;
      }
    }
  }

  #documentDone(): void {
    if (this.#lastByte !== 0) this.#fail(`a document of ${this.#current!.name} ending at byte ${this.#offset} is not terminated`);
    const ns = this.#current!;
    ns.documents++;
    ns.bytes += this.#buf.readInt32LE(0);
  }

  /** A complete header, metadata or namespace header document is in `buf`. */
  #document(buf: Buffer): void {
    if (buf[buf.length - 1] !== 0) this.#fail(`a ${this.#state} document ending at byte ${this.#offset} is not terminated`);
    let doc: Record<string, unknown>;
    try {
      doc = mongoDriver().BSON.deserialize(buf, { promoteLongs: false, promoteValues: true });
    } catch (err) {
      this.#fail(`a ${this.#state} document ending at byte ${this.#offset} is not valid BSON (${(err as Error).message})`);
    }
    if (this.#state === 'header') {
      this.#prelude.formatVersion = String(doc.version ?? '');
      this.#prelude.serverVersion = String(doc.server_version ?? '');
      this.#prelude.toolVersion = String(doc.tool_version ?? '');
      this.#prelude.concurrentCollections = Number(doc.concurrent_collections ?? 0);
      this.#state = 'prelude';
    } else if (this.#state === 'prelude') {
      this.#prelude.collections.push(collectionMetadata(doc, (m) => this.#fail(m)));
    } else {
      const name = `${String(doc.db)}.${String(doc.collection)}`;
      if (this.#done[name]) this.#fail(`${name} continues after its EOF header (byte ${this.#offset})`);
      let ns = this.#open.get(name);
      if (!ns) {
        ns = { name, crc: new Crc64Ecma(), documents: 0, bytes: 0 };
        this.#open.set(name, ns);
      }
      if (doc.EOF === true) {
        const { high, low } = ns.crc.halves();
        const crc = doc.CRC as { high?: number; low?: number } | number | undefined;
        const want = typeof crc === 'number' ? { high: crc < 0 ? -1 : 0, low: crc | 0 } : { high: crc?.high ?? NaN, low: crc?.low ?? NaN };
        if (want.high !== high || want.low !== low) {
          this.#fail(`the CRC-64 of ${name}'s ${ns.documents} documents is ${ns.crc.digestHex()}, but the archive says ${hex64(want.high, want.low)}`);
        }
        this.#done[name] = { documents: ns.documents, bytes: ns.bytes, crc: ns.crc.digestHex() };
        this.#open.delete(name);
        this.#state = 'eof-terminator';
      } else {
        this.#current = ns;
        this.#state = 'data';
      }
    }
    this.#collect(4);
  }

  /** Throws unless the archive ended right after a complete segment, with every namespace closed. */
  end(): void {
    if (this.#offset === 0) this.#fail('it is empty (the dump produced no output)');
    const where =
      this.#state === 'magic' ? 'inside the magic number'
      : this.#state === 'header' ? 'inside the archive header'
      : this.#state === 'prelude' ? 'inside the collection metadata'
      : this.#state === 'data' || this.#streaming > 0 ? `inside the documents of ${this.#current?.name}`
      : this.#state === 'eof-terminator' ? 'before the terminator of an EOF header'
      : this.#have > 0 ? 'inside a namespace header'
      : null;
    if (where) this.#fail(`it ends after ${this.#offset} bytes, ${where}: the dump is truncated`);
    const open = [...this.#open.keys()];
    if (open.length) this.#fail(`it ends without the EOF header of ${open.join(', ')}: the dump is truncated`);
    const missing = this.#prelude.collections
      .filter((c) => c.type !== 'view')
      .map((c) => `${c.db}.${c.type === 'timeseries' ? `system.buckets.${c.collection}` : c.collection}`)
      .filter((n) => !this.#done[n]);
    if (missing.length) this.#fail(`it ends without the data of ${missing.join(', ')}: the dump is truncated`);
  }

  #fail(what: string): never {
    throw integrityError(
      `the mongodump archive is not whole: ${what}`,
      'run the backup again; if it fails the same way, run mongodump by hand with --archive=FILE and check its output',
    );
  }
}

/**
 * Passes a mongodump archive through unchanged while an ArchiveParser checks it. The stream fails with the
 * parser's integrityError, so a malformed or cut-short dump can never be stored as whole.
 */
export class ArchiveInspector extends Transform {
  readonly parser = new ArchiveParser();

  constructor(private readonly opts: ArchiveInspectorOptions = {}) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.parser.feed(chunk);
    } catch (err) {
      done(err as Error);
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const gate = this.opts.beforeEnd?.() ?? Promise.resolve();
    gate.then(
      () => {
        try {
          this.parser.end();
          done();
        } catch (err) {
          done(err as Error);
        }
      },
      (err: unknown) => done(err as Error),
    );
  }

  facts(): ArchiveFacts {
    return this.parser.facts();
  }
}

function hex64(high: number, low: number): string {
  return (high >>> 0).toString(16).padStart(8, '0') + (low >>> 0).toString(16).padStart(8, '0');
}

/** One prelude entry: its metadata field is Extended JSON with the options and index specs. */
function collectionMetadata(doc: Record<string, unknown>, fail: (m: string) => never): ArchiveCollection {
  const db = String(doc.db ?? '');
  const collection = String(doc.collection ?? '');
  let meta: { options?: Record<string, unknown>; indexes?: Array<Record<string, unknown>>; type?: string } = {};
  if (typeof doc.metadata === 'string' && doc.metadata.length > 0) {
    try {
      meta = mongoDriver().BSON.EJSON.parse(doc.metadata, { relaxed: true }) as typeof meta;
    } catch (err) {
      fail(`the metadata of ${db}.${collection} is not Extended JSON (${(err as Error).message})`);
    }
  }
  const indexes = (meta.indexes ?? []).map((spec) => {
    const { v: _v, key, name, unique, ns: _ns, ...options } = spec;
    const out: ArchiveIndex = { name: String(name), key: (key ?? {}) as Record<string, unknown>, options };
    if (unique === true) out.unique = true;
    return out;
  });
  return { db, collection, type: String(doc.type || meta.type || 'collection'), options: meta.options ?? {}, indexes };
}

/**
 * Reads only the prelude of an archive file (its header and collection metadata: options and index specs),
 * not the documents. Rejects with an integrityError when the file is not an archive.
 */
export async function readArchivePrelude(file: string, signal?: AbortSignal): Promise<ArchivePrelude> {
  const parser = new ArchiveParser();
  for await (const chunk of createReadStream(file, { signal, highWaterMark: 64 * 1024 })) {
    parser.feed(chunk as Buffer);
    if (parser.prelude) return parser.prelude;
  }
  parser.end();
  return parser.prelude!;
}
