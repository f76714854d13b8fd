import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { mapConcurrent } from '../../../core/util/pool.js';
import { keyLabel } from './snapshot-sample.js';
import type { PayloadSampleEntry } from './keys-inspect.js';
import { payloadType } from './keys-inspect.js';
import { startScratch, type ScratchServer } from './scratch-server.js';
import { MAX_COMPARED_BYTES, readFingerprint, SAMPLE_READS_IN_FLIGHT, type ValueFingerprint } from './value-fingerprint.js';
import type { SampleObservation } from './redis-checks.js';

/** What the target holds for a key: its DUMP payload and absolute expiry (null payload: no such key). */
export type DumpReader = (db: number, key: Buffer) => Promise<{ payload: Buffer | null; expiresAtMs: number | null }>;

/** Reads DUMP and the expiry of a key on one connection (PEXPIRETIME on Redis 7+, else now + PTTL). */
export async function dumpWithExpiry(client: Redis, key: Buffer, pexpiretime: boolean): Promise<{ payload: Buffer | null; expiresAtMs: number | null }> {
  const res = await client.pipeline().dumpBuffer(key).call(pexpiretime ? 'PEXPIRETIME' : 'PTTL', key).exec();
  const [dumpErr, payload] = res?.[0] ?? [null, null];
  const [ttlErr, t] = res?.[1] ?? [null, -2];
  if (dumpErr || ttlErr) throw dumpErr ?? ttlErr;
  const ttl = Number(t);
  if (payload === null || ttl === -2) return { payload: null, expiresAtMs: null };
  return { payload: payload as Buffer, expiresAtMs: ttl < 0 ? null : pexpiretime ? ttl : Date.now() + ttl };
}

/**
 * Decodes two DUMP payloads in a private, empty scratch redis-server and fingerprints them: for values
 * whose serialization differs while their content may not (a hash or set in hash-table encoding is
 * written in hash order, which differs between processes; a newer Redis may re-encode). Started on first
 * use; when it cannot start, compare() returns null and says why in `unavailable`.
 */
export class PayloadDecoder {
  private scratch: Promise<ScratchServer> | null = null;
  unavailable: string | null = null;

  constructor(
    private readonly bin: string,
    private readonly dir: string,
    private readonly where: string,
    private readonly signal?: AbortSignal,
  ) {}

  async compare(a: Buffer, b: Buffer): Promise<[ValueFingerprint, ValueFingerprint] | null> {
    if (this.unavailable !== null) return null;
    let s: ScratchServer;
    try {
      s = await (this.scratch ??= startScratch({ bin: this.bin, dir: path.join(this.dir, 'decode'), databases: 16, loadTimeoutMs: 30_000, where: this.where, signal: this.signal }));
    } catch (err) {
      this.unavailable = `no scratch redis-server to decode payloads (${(err as Error).message.split('\n')[0]})`;
      return null;
    }
    const c = await s.pool.db(0);
    try {
      await c.callBuffer('RESTORE', 'tykdr:a', '0', a, 'REPLACE');
      await c.callBuffer('RESTORE', 'tykdr:b', '0', b, 'REPLACE');
      const fa = await readFingerprint(c, Buffer.from('tykdr:a'), { pexpiretime: true, signal: this.signal });
      const fb = await readFingerprint(c, Buffer.from('tykdr:b'), { pexpiretime: true, signal: this.signal });
      return fa && fb ? [fa, fb] : null;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      this.unavailable = `the scratch redis-server could not decode a payload (${(err as Error).message.split('\n')[0]})`;
      return null;
    } finally {
      await c.del('tykdr:a', 'tykdr:b').catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const s = this.scratch;
    this.scratch = null;
    if (s) await s.then((x) => x.stop(), () => undefined);
  }
}

/**
 * The target's side of a keys-mode sample: DUMP of every sampled key, compared with the snapshot's
 * payload. Equal bytes are equal values. Different bytes are decoded (PayloadDecoder) and compared as
 * content; when they cannot be decoded the key counts as not compared ('not-decoded'), never as a match.
 * Reads run SAMPLE_READS_IN_FLIGHT at a time; decodes one at a time (the scratch server has two fixed keys).
 */
export async function observePayloadSample(
  entries: PayloadSampleEntry[],
  dump: DumpReader,
  decoder: PayloadDecoder | null,
  signal?: AbortSignal,
): Promise<SampleObservation[]> {
  let decoding: Promise<unknown> = Promise.resolve();
  const decode = (a: Buffer, b: Buffer): Promise<[ValueFingerprint, ValueFingerprint] | null> => {
    const next = decoding.then(() => decoder!.compare(a, b));
    decoding = next.catch(() => undefined);
    return next;
  };
  const observe = async (e: PayloadSampleEntry): Promise<SampleObservation> => {
    signal?.throwIfAborted();
    const label = keyLabel(e.cls, e.key);
    const snap: ValueFingerprint = { type: e.type, size: e.bytes, digest: e.sha256, expiresAtMs: e.expiresAtMs };
    const t = await dump(e.db, e.key);
    const observedAt = Date.now();
    if (t.payload === null) return { label, snapshot: snap, target: null, observedAt };
    const sha = createHash('sha256').update(t.payload).digest('hex');
    if (sha === e.sha256) return { label, snapshot: snap, target: { ...snap, expiresAtMs: t.expiresAtMs }, observedAt };
    const targetFp: ValueFingerprint = { type: payloadType(t.payload), size: t.payload.length, digest: sha, expiresAtMs: t.expiresAtMs };
    const decoded = e.payload && decoder ? await decode(e.payload, t.payload) : null;
    if (decoded) {
      return { label, snapshot: { ...decoded[0], expiresAtMs: e.expiresAtMs }, target: { ...decoded[1], expiresAtMs: t.expiresAtMs }, observedAt };
    }
    return { label, snapshot: { ...snap, skipped: e.payload ? 'not-decoded' : 'too-large' }, target: targetFp, observedAt };
  };
  const out = new Array<SampleObservation>(entries.length);
  const small = entries.flatMap((e, i) => (e.bytes <= MAX_COMPARED_BYTES ? [i] : []));
  await mapConcurrent(small, SAMPLE_READS_IN_FLIGHT, async (i) => void (out[i] = await observe(entries[i]!)));
  for (const [i, e] of entries.entries()) if (e.bytes > MAX_COMPARED_BYTES) out[i] = await observe(e);
  return out;
}
