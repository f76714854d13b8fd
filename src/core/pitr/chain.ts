import { createWriteStream } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { createDecryptStream } from '../age/index.js';
import type { CompressionConfig } from '../config/schema.js';
import { integrityError, isAbortError, TykdrError } from '../errors.js';
import type { Store } from '../interfaces/store.js';
import { chainKey, parseStreamKey, segmentKey, segmentMetaKey, segmentName, STREAMS_PREFIX } from '../layout.js';
import { createDecompressor, Tap, writeArtifact, type EncryptionKeys } from '../pipeline.js';
import type { DecryptionKeys } from '../restore/decryption-keys.js';

/**
 * Point-in-time chains: a base snapshot (an ordinary snapshot of a Redis component, taken by PSYNC) and the
 * replication feed that followed it, in segments. Each segment's object holds the feed's bytes exactly as the
 * master sent them (RESP commands: replayable with `redis-cli --pipe`); its JSON, written after the object,
 * says which replication offsets and which wall-clock times it covers, with marks (byte offset, time) inside
 * it so a restore can stop at any moment to within the marks' spacing.
 */

export const CHAIN_FORMAT = 'tykdr-chain/1';

const chainSchema = z.object({
  format: z.literal(CHAIN_FORMAT),
  chain: z.string(),
  /** The snapshot holding the base RDB (the same id as the chain). */
  base_snapshot: z.string(),
  component: z.string(),
  /** Replication id and offset the base RDB is consistent at; the first segment starts at offset + 1. */
  replid: z.string(),
  base_offset: z.number().int().nonnegative(),
  base_at: z.string(),
  /** Set when this chain started because the previous one could not be continued: what was lost between. */
  after_gap: z.object({ chain: z.string(), last_offset: z.number(), last_at: z.string().nullable(), reason: z.string() }).optional(),
});
export type ChainRecord = z.infer<typeof chainSchema>;

const segmentSchema = z.object({
  chain: z.string(),
  seq: z.number().int().positive(),
  name: z.string(),
  compression: z.enum(['zstd', 'gzip']),
  /** Replication id of the master that sent it (changes after a failover; the offsets continue). */
  replid: z.string(),
  /** First and last replication offset of the bytes it holds (start = previous end + 1). */
  start_offset: z.number().int(),
  end_offset: z.number().int(),
  /** From when (opened) to when (closed) it covers the feed: nothing else arrived in that time. */
  from: z.string(),
  to: z.string(),
  /** [bytes from the segment start, unix ms]: every byte before the offset had arrived by then. Ascending. */
  marks: z.array(z.tuple([z.number().int(), z.number()])),
  commands: z.number().int(),
  plaintext_bytes: z.number().int(),
  stored_bytes: z.number().int(),
  sha256: z.string(),
});
export type SegmentRecord = z.infer<typeof segmentSchema>;

export interface ChainWriterOptions {
  store: Store;
  compression: CompressionConfig;
  keys: EncryptionKeys;
  signal?: AbortSignal;
}

/** Writes one chain: its record first, then segments in order. */
export class ChainWriter {
  private seq = 0;

  constructor(
    readonly record: ChainRecord,
    private readonly o: ChainWriterOptions,
  ) {}

  static async start(record: Omit<ChainRecord, 'format'>, o: ChainWriterOptions): Promise<ChainWriter> {
    const full: ChainRecord = { format: CHAIN_FORMAT, ...record };
    await o.store.put(chainKey(full.chain), Readable.from([Buffer.from(`${JSON.stringify(full, null, 2)}\n`)]), { signal: o.signal, contentType: 'application/json' });
    return new ChainWriter(full, o);
  }

  /** Drops a segment that stayed empty: no object, no record, and its number is used by the next one. */
  discard(seg: SegmentWriter): void {
    seg.abort(new Error('empty segment discarded'));
    if (seg.seq === this.seq) this.seq -= 1;
  }

  /** Opens the next segment; its bytes stream to the store as they are written. */
  open(startOffset: number, replid: string, now = Date.now()): SegmentWriter {
    this.seq += 1;
    return new SegmentWriter(this.record.chain, this.seq, startOffset, replid, now, this.o);
  }
}

export class SegmentWriter {
  readonly body = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly done: Promise<Awaited<ReturnType<typeof writeArtifact>>>;
  private readonly marks: Array<[number, number]> = [];
  private bytes = 0;
  private lastMarkMs = 0;
  commands = 0;
  readonly name: string;

  constructor(
    private readonly chain: string,
    readonly seq: number,
    readonly startOffset: number,
    private readonly replid: string,
    private readonly openedMs: number,
    private readonly o: ChainWriterOptions,
  ) {
    this.name = segmentName(seq, o.compression.algorithm);
    this.done = writeArtifact({ source: this.body, store: o.store, key: segmentKey(chain, this.name), compression: o.compression, keys: o.keys, signal: o.signal });
    // A failure is reported by close(); until then it must not be an unhandled rejection.
    this.done.catch(() => undefined);
  }

  /** Bytes in the segment so far. */
  get size(): number {
    return this.bytes;
  }

  get openedAt(): number {
    return this.openedMs;
  }

  /** Appends whole commands' bytes that arrived at `ms`; false when the store is behind (wait for 'drain' on body). */
  write(bytes: Buffer, commands: number, ms: number): boolean {
    this.bytes += bytes.length;
    this.commands += commands;
    if (ms - this.lastMarkMs >= 10) {
      this.marks.push([this.bytes, ms]);
      this.lastMarkMs = ms;
    } else if (this.marks.length > 0) {
      // Same 10 ms window: move the window's mark forward to these bytes and their arrival time (a mark's
      // time must never be earlier than its last byte's arrival, or a restore to that time would include it).
      this.marks[this.marks.length - 1] = [this.bytes, ms];
    }
    return this.body.write(bytes);
  }

  /** Ends the segment at `closedMs`: the object is stored, then its record. Resolves the record. */
  async close(closedMs = Date.now()): Promise<SegmentRecord> {
    this.body.end();
    const w = await this.done;
    const last = this.marks[this.marks.length - 1];
    if (!last || last[0] !== this.bytes) this.marks.push([this.bytes, closedMs]);
    const rec: SegmentRecord = {
      chain: this.chain,
      seq: this.seq,
      name: this.name,
      compression: this.o.compression.algorithm,
      replid: this.replid,
      start_offset: this.startOffset,
      end_offset: this.startOffset + this.bytes - 1,
      from: new Date(this.openedMs).toISOString(),
      to: new Date(closedMs).toISOString(),
      marks: this.marks,
      commands: this.commands,
      plaintext_bytes: w.plaintextBytes,
      stored_bytes: w.storedBytes,
      sha256: w.sha256,
    };
    await this.o.store.put(segmentMetaKey(this.chain, this.seq), Readable.from([Buffer.from(`${JSON.stringify(rec)}\n`)]), {
      signal: this.o.signal,
      contentType: 'application/json',
    });
    return rec;
  }

  /** Drops the segment (the object's upload is aborted; no record is written). */
  abort(err: Error): void {
    this.body.destroy(err);
  }
}

export interface ChainInfo {
  record: ChainRecord;
  /** Complete segments in order, up to the first missing one. */
  segments: SegmentRecord[];
  /** Segments after a missing one (never used by a restore; reported). */
  stranded: number;
  /** Replication offset and time the chain reaches without a hole. */
  coveredTo: { offset: number; at: string };
}

/** Every chain in the store (newest base first), with its complete segments. */
export async function listChains(store: Store, signal?: AbortSignal): Promise<ChainInfo[]> {
  const names = new Map<string, string[]>();
  for await (const o of store.list(STREAMS_PREFIX, { signal })) {
    const k = parseStreamKey(o.key);
    if (!k) continue;
    const list = names.get(k.chain) ?? [];
    list.push(k.name);
    names.set(k.chain, list);
  }
  const out: ChainInfo[] = [];
  for (const [chain, files] of names) {
    if (!files.includes('chain.json')) continue;
    const record = chainSchema.parse(JSON.parse((await readAll(await store.get(chainKey(chain), { signal }))).toString('utf8')));
    const seqs = files
      .map((f) => /^seg-(\d{8})\.json$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const segments: SegmentRecord[] = [];
    let expectOffset = record.base_offset + 1;
    let stranded = 0;
    for (const [i, seq] of seqs.entries()) {
      const rec = segmentSchema.parse(JSON.parse((await readAll(await store.get(segmentMetaKey(chain, seq), { signal }))).toString('utf8')));
      if (seq !== i + 1 || rec.start_offset !== expectOffset) {
        stranded = seqs.length - i;
        break;
      }
      segments.push(rec);
      expectOffset = rec.end_offset + 1;
    }
    const last = segments[segments.length - 1];
    out.push({ record, segments, stranded, coveredTo: { offset: last?.end_offset ?? record.base_offset, at: last?.to ?? record.base_at } });
  }
  return out.sort((a, b) => (a.record.base_at < b.record.base_at ? 1 : -1));
}

export interface PointInTimePlan {
  chain: ChainInfo;
  /** Segments to replay, the last possibly in part. */
  segments: SegmentRecord[];
  /** Bytes of the last segment to replay (a mark's offset); the others whole. */
  lastBytes: number;
  /** The moment the restore reaches: the time of the last mark replayed (or the base). */
  reachedAt: Date;
  reachedOffset: number;
  /** Why the point reached is before the one asked for, when it is. */
  shortBy?: string;
}

/**
 * The chain and segments that bring a Redis component to `at`: the newest chain whose base is at or before
 * it, its segments up to the last mark at or before `at`. When the chain ends (or has a hole) before `at`,
 * the plan stops at its end and says so.
 */
export function planToTime(chains: ChainInfo[], component: string, at: Date): PointInTimePlan | null {
  const t = at.getTime();
  const chain = chains.find((c) => c.record.component === component && new Date(c.record.base_at).getTime() <= t);
  if (!chain) return null;
  const segments: SegmentRecord[] = [];
  let lastBytes = 0;
  let reachedMs = new Date(chain.record.base_at).getTime();
  let reachedOffset = chain.record.base_offset;
  for (const s of chain.segments) {
    const marks = s.marks.filter(([, ms]) => ms <= t);
    if (marks.length === 0) break;
    const [bytes, ms] = marks[marks.length - 1]!;
    segments.push(s);
    lastBytes = bytes;
    reachedMs = ms;
    reachedOffset = s.start_offset + bytes - 1;
    if (bytes < s.plaintext_bytes) break;
    // The whole segment is before `at`: the feed is known quiet until its close.
    if (new Date(s.to).getTime() <= t) reachedMs = Math.max(reachedMs, new Date(s.to).getTime());
  }
  const plan: PointInTimePlan = { chain, segments, lastBytes, reachedAt: new Date(Math.min(reachedMs, t)), reachedOffset };
  const end = new Date(chain.coveredTo.at).getTime();
  if (end < t) {
    plan.reachedAt = new Date(end);
    plan.shortBy = chain.stranded
      ? `chain ${chain.record.chain} has a missing segment after ${chain.coveredTo.at} (${chain.stranded} later segment(s) cannot be used)`
      : `chain ${chain.record.chain} ends at ${chain.coveredTo.at} (the capture stopped or has not written a later segment yet)`;
  }
  return plan;
}

/**
 * Downloads one segment, checks its SHA-256 against its record, and writes its plaintext (the first `bytes`
 * of it, when given) to `file`. Rejects with an integrityError when the object differs from its record.
 */
export async function stageSegment(opts: { store: Store; seg: SegmentRecord; keys: DecryptionKeys; file: string; signal?: AbortSignal }): Promise<number> {
  const { seg } = opts;
  const stored = new Tap({ sha256: true });
  const plain = new Tap();
  // Made before the download: one that cannot be made (core/zstd-napi.ts) leaves no store stream open.
  const inflate = createDecompressor(seg.compression);
  const body = await opts.store.get(segmentKey(seg.chain, seg.name), { signal: opts.signal });
  try {
    await pipeline(
      body,
      stored,
      createDecryptStream({ identities: opts.keys.identities, passphrase: opts.keys.passphrase?.reveal() }),
      inflate,
      plain,
      createWriteStream(opts.file, { mode: 0o600 }),
      { signal: opts.signal },
    );
  } catch (err) {
    // Stopped (SIGINT/SIGTERM: the store may give the signal's own reason, an 'interrupted' TykdrError), or the store
    // failed: not a damaged segment.
    if (isAbortError(err) || opts.signal?.aborted || (err instanceof TykdrError && (err.kind === 'storeError' || err.kind === 'interrupted'))) throw err;
    throw integrityError(
      `segment ${seg.name} of chain ${seg.chain} does not decrypt and decompress: ${(err as Error).message}`,
      'the segment was altered or damaged: restore to a time before it',
      err,
    );
  }
  const sha = stored.sha256Hex();
  if (sha !== seg.sha256 || stored.bytes !== seg.stored_bytes || plain.bytes !== seg.plaintext_bytes) {
    throw integrityError(
      `segment ${seg.name} of chain ${seg.chain}: the store holds ${sha.slice(0, 16)}… (${stored.bytes} bytes, ${plain.bytes} plaintext), its record says ${seg.sha256.slice(0, 16)}… (${seg.stored_bytes}, ${seg.plaintext_bytes})`,
      'the segment was altered: restore to a time before it',
    );
  }
  return plain.bytes;
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface StreamCoverage {
  component: string;
  chain: string;
  seq: number;
  /** The moment the newest complete segment (or the base) covers up to. */
  coveredTo: Date;
}

/**
 * How far each component's point-in-time capture reaches, cheaply enough to ask every few seconds: one full
 * listing at first (and every `relistEvery` refreshes, to find chains started after a gap), then only a `stat`
 * of each tracked chain's next segment records. Never reads the segments themselves.
 */
export class CoverageTracker {
  private readonly tracked = new Map<string, StreamCoverage>();
  private refreshes = 0;

  constructor(
    private readonly store: Store,
    private readonly relistEvery = 20,
  ) {}

  async refresh(signal?: AbortSignal): Promise<StreamCoverage[]> {
    if (this.refreshes++ % this.relistEvery === 0) await this.relist(signal);
    for (const [component, start] of this.tracked) {
      let cur = start;
      for (let n = 0; n < 10_000; n++) {
        const next = segmentMetaKey(cur.chain, cur.seq + 1);
        if (!(await this.store.stat(next, { signal }))) break;
        const rec = segmentSchema.parse(JSON.parse((await readAll(await this.store.get(next, { signal }))).toString('utf8')));
        cur = { ...cur, seq: rec.seq, coveredTo: new Date(rec.to) };
      }
      this.tracked.set(component, cur);
    }
    return [...this.tracked.values()];
  }

  /** The newest chain of each component, from a listing, with its highest complete segment. */
  private async relist(signal?: AbortSignal): Promise<void> {
    const seqs = new Map<string, Set<number>>();
    for await (const o of this.store.list(STREAMS_PREFIX, { signal })) {
      const k = parseStreamKey(o.key);
      if (!k) continue;
      const seq = /^seg-(\d{8})\.json$/.exec(k.name);
      const set = seqs.get(k.chain) ?? new Set<number>();
      if (seq) set.add(Number(seq[1]));
      if (k.name === 'chain.json' || seq) seqs.set(k.chain, set);
    }
    // The highest segment reached without a hole (as listChains): a stranded later one covers nothing.
    const byChain = new Map<string, number>();
    for (const [chain, set] of seqs) {
      let n = 0;
      while (set.has(n + 1)) n += 1;
      byChain.set(chain, n);
    }
    // Chain ids sort by time: the newest chain of each component wins.
    for (const chain of [...byChain.keys()].sort()) {
      if (!(await this.store.stat(chainKey(chain), { signal }))) continue;
      const rec = chainSchema.parse(JSON.parse((await readAll(await this.store.get(chainKey(chain), { signal }))).toString('utf8')));
      const known = this.tracked.get(rec.component);
      if (known && known.chain > chain) continue;
      const seq = byChain.get(chain) ?? 0;
      let coveredTo = new Date(rec.base_at);
      if (seq > 0) {
        const seg = segmentSchema.parse(JSON.parse((await readAll(await this.store.get(segmentMetaKey(chain, seq), { signal }))).toString('utf8')));
        coveredTo = new Date(seg.to);
      }
      if (!known || known.chain !== chain || known.seq < seq) this.tracked.set(rec.component, { component: rec.component, chain, seq, coveredTo });
    }
  }
}
