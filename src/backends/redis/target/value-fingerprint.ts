import { createHash, type Hash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Values larger than this are not compared (but are counted): the sample must stay cheap and bounded. */
export const MAX_COMPARED_BYTES = 1 << 20;

/**
 * Sampled keys read from the target at once (redis-sample, redis-ttl). Each read is a round trip, and a target may be
 * a network away: one by one, the default sample's 100 keys took 0.26 s at a 2.5 ms round trip. Keys whose snapshot
 * value is over MAX_COMPARED_BYTES are read one at a time (or not at all), so while the target holds what the
 * snapshot does, the reads hold at most this many such values. (A target whose value grew far beyond the snapshot's
 * is read as it is: its DUMP whole, in keys and rdb-file modes.)
 */
export const SAMPLE_READS_IN_FLIGHT = 16;

/**
 * A value reduced to what comparing two copies needs: its type, its size (bytes for strings, elements for
 * the rest), a SHA-256 over a canonical encoding of its content, and its absolute expiry. Comparing digests
 * compares content byte for byte (up to SHA-256 collisions) without holding values in memory.
 *
 * Canonical content: strings as they are; lists in order; hashes as field/value pairs sorted by field; sets
 * sorted; sorted sets in ZRANGE order with scores as numbers; streams as their entries (IDs, fields, values;
 * consumer groups are not compared). Each element is length-prefixed, so ["ab","c"] ≠ ["a","bc"].
 */
export interface ValueFingerprint {
  /** TYPE's answer: string, list, set, zset, hash, stream, or a module type name. */
  type: string;
  size: number;
  /** Null when the content was not read (too large, unsupported type, or size already differs from expectSize). */
  digest: string | null;
  /** Not compared by content: over MAX_COMPARED_BYTES, a module type, or (keys mode) a payload no scratch server could decode. */
  skipped?: 'too-large' | 'unsupported-type' | 'not-decoded';
  /** Absolute Unix ms; null when the key does not expire. */
  expiresAtMs: number | null;
}

export interface FingerprintOptions {
  /** The server has PEXPIRETIME (Redis 7.0+); else the expiry is read as now + PTTL. */
  pexpiretime: boolean;
  /** Skip (as too-large) values whose size in bytes is over this (strings: STRLEN; others: MEMORY USAGE). */
  maxBytes?: number;
  /** Do not read the content when the size differs from this (the copies already differ). */
  expectSize?: number;
  /** Do not read the content when the type differs from this (the copies already differ). */
  expectType?: string;
  signal?: AbortSignal;
}

const SIZE_COMMAND: Record<string, string> = { string: 'STRLEN', list: 'LLEN', set: 'SCARD', zset: 'ZCARD', hash: 'HLEN', stream: 'XLEN' };

/** Reads one key's fingerprint; null when the key does not exist (or expired). */
export async function readFingerprint(client: Redis, key: Buffer, o: FingerprintOptions): Promise<ValueFingerprint | null> {
  o.signal?.throwIfAborted();
  const head = await client
    .pipeline()
    .type(key)
    .call(o.pexpiretime ? 'PEXPIRETIME' : 'PTTL', key)
    .exec();
  const [typeErr, type] = head?.[0] ?? [null, 'none'];
  const [ttlErr, t] = head?.[1] ?? [null, -2];
  if (typeErr || ttlErr) throw typeErr ?? ttlErr;
  const now = Date.now();
  if (type === 'none' || t === -2) return null;
  const ttl = Number(t);
  const expiresAtMs = ttl < 0 ? null : o.pexpiretime ? ttl : now + ttl;
  const sizeCmd = SIZE_COMMAND[String(type)];
  if (sizeCmd === undefined) return { type: String(type), size: 0, digest: null, skipped: 'unsupported-type', expiresAtMs };
  const size = Number(await client.call(sizeCmd, key));
  if (o.maxBytes !== undefined) {
    const bytes = type === 'string' ? size : Number((await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
    if (bytes > o.maxBytes) return { type: String(type), size, digest: null, skipped: 'too-large', expiresAtMs };
  }
  if ((o.expectSize !== undefined && o.expectSize !== size) || (o.expectType !== undefined && o.expectType !== String(type))) {
    return { type: String(type), size, digest: null, expiresAtMs };
  }
  const h = createHash('sha256').update(String(type));
  await digestContent(client, key, String(type), h);
  return { type: String(type), size, digest: h.digest('hex'), expiresAtMs };
}

function put(h: Hash, b: Buffer | string): void {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(buf.length);
  h.update(len).update(buf);
}

/** Scores as Redis prints them vary by version ("1.5" vs "1.5000000000000000"): compare them as numbers. */
function canonicalScore(s: Buffer): string {
  const text = s.toString('latin1');
  if (/^\+?inf$/i.test(text)) return '+inf';
  if (/^-inf$/i.test(text)) return '-inf';
  return String(Number(text));
}

async function digestContent(client: Redis, key: Buffer, type: string, h: Hash): Promise<void> {
  switch (type) {
    case 'string':
      put(h, (await client.getBuffer(key)) ?? Buffer.alloc(0));
      return;
    case 'list':
      for (const v of (await client.callBuffer('LRANGE', key, '0', '-1')) as Buffer[]) put(h, v);
      return;
    case 'set':
      for (const v of ((await client.callBuffer('SMEMBERS', key)) as Buffer[]).sort(Buffer.compare)) put(h, v);
      return;
    case 'hash': {
      const flat = (await client.callBuffer('HGETALL', key)) as Buffer[];
      const pairs: Array<[Buffer, Buffer]> = [];
      for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
      pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
      for (const [f, v] of pairs) {
        put(h, f);
        put(h, v);
      }
      return;
    }
    case 'zset': {
      // RESP3 (ioredis 6 negotiates it) answers [member, score] pairs; RESP2 a flat list. Both read the same.
      const reply = (await client.callBuffer('ZRANGE', key, '0', '-1', 'WITHSCORES')) as Array<Buffer | Buffer[]>;
      const flat = reply.flat() as Buffer[];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        put(h, flat[i]!);
        put(h, canonicalScore(flat[i + 1]!));
      }
      return;
    }
    case 'stream': {
      const entries = (await client.callBuffer('XRANGE', key, '-', '+')) as Array<[Buffer, Buffer[]]>;
      for (const [id, fields] of entries) {
        put(h, id);
        for (const f of fields) put(h, f);
      }
      return;
    }
  }
}
