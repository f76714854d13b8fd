import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { type DumpEntry, type DumpPayloadEntry, DumpPayloadCutter, cutDumpPayloads } from '../../src/backends/redis/formats/dump-payload.js';
import { dumpPayloadVersion, maxDumpVersion, parseServerInfo } from '../../src/backends/redis/protocol/server-info.js';
import { openRdbStream } from '../../src/backends/redis/source/replication.js';
import { readFingerprint } from '../../src/backends/redis/target/value-fingerprint.js';
import { inspectRdbEvidence, inspectRdbForLive, inspectRdbRecords } from '../../src/backends/redis/target/keys-inspect.js';
import { KEY_CLASSES } from '../../src/core/tyk/key-classes.js';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { useCleanups } from '../helpers/cleanups.js';
import { fillEveryEncoding, fillRandom, keysPerDb, prng } from '../helpers/redis-keyspace.js';
import { SERVER_KINDS, type RedisServer, type ServerKind, startRedis } from '../helpers/redis-server.js';

/**
 * The DUMP payload cutter against the server matrix: each server fills a keyspace, its RDB comes over
 * replication (openRdbStream), the cutter cuts it, and the payloads are checked against the server's own
 * DUMP, then RESTOREd (ABSTTL) into fresh servers of the same and of newer versions.
 */

const { cleanups } = useCleanups();

async function server(kind: ServerKind): Promise<RedisServer> {
  const s = await startRedis({ server: kind });
  cleanups.push(() => s.stop());
  return s;
}

function connect(s: RedisServer): Redis {
  const c = new Redis({ host: s.host, port: s.port, maxRetriesPerRequest: 1 });
  cleanups.push(async () => c.disconnect());
  return c;
}

/** Servers ordered by what they load: each one takes the DUMP payloads of those before it (measured in server-matrix.test.ts). */
const ORDER: readonly ServerKind[] = SERVER_KINDS;
const newerOrSame = (kind: ServerKind) => ORDER.slice(ORDER.indexOf(kind));

const id = (db: number, key: Buffer) => `${db}/${key.toString('hex')}`;

interface SourceKey {
  db: number;
  key: Buffer;
  dump: Buffer;
  /** TYPE/OBJECT ENCODING, e.g. "zset/skiplist". */
  encoding: string;
  /** Absolute ms (PEXPIRETIME, or now + PTTL before Redis 7.0); null when the key does not expire. */
  expireAtMs: number | null;
}

/** Whether a server has PEXPIRETIME (Redis 7.0+, Valkey). */
const exactTtl = (kind: ServerKind) => kind !== 'redis-6.2';

async function expiryOf(c: Redis, key: Buffer, exact: boolean): Promise<number | null> {
  const t = Number(await c.call(exact ? 'PEXPIRETIME' : 'PTTL', key));
  if (t === -2) throw new Error(`key ${key.toString('hex').slice(0, 40)} is missing`);
  return t < 0 ? null : exact ? t : Date.now() + t;
}

/** Every key of every database with its DUMP and expiry, read with SCAN. */
async function readKeyspace(c: Redis, kind: ServerKind): Promise<Map<string, SourceKey>> {
  const out = new Map<string, SourceKey>();
  for (const db of (await keysPerDb(c)).keys()) {
    await c.select(db);
    let cursor = '0';
    do {
      const [next, keys] = (await c.scanBuffer(cursor, 'COUNT', 1000)) as [Buffer, Buffer[]];
      cursor = next.toString();
      for (const key of keys) {
        const dump = await c.dumpBuffer(key);
        if (dump === null) throw new Error('key vanished during the scan');
        const encoding = `${String(await c.type(key))}/${String(await c.call('OBJECT', 'ENCODING', key))}`;
        out.set(id(db, key), { db, key, dump, encoding, expireAtMs: await expiryOf(c, key, exactTtl(kind)) });
      }
    } while (cursor !== '0');
  }
  await c.select(0);
  return out;
}

/** The server's RDB over replication, cut as it streams in; also returns the raw bytes and the chunk sizes seen. */
async function cutLive(s: RedisServer): Promise<{ entries: DumpEntry[]; raw: Buffer; maxChunk: number }> {
  const { stream } = await openRdbStream({ host: s.host, port: s.port });
  const chunks: Buffer[] = [];
  let maxChunk = 0;
  async function* tee() {
    for await (const c of stream as AsyncIterable<Buffer>) {
      chunks.push(c);
      maxChunk = Math.max(maxChunk, c.length);
      yield c;
    }
  }
  const entries: DumpEntry[] = [];
  const it = cutDumpPayloads(tee());
  for (;;) {
    const r = await it.next();
    if (r.done) {
      expect(r.value.checksum).toBe('ok');
      break;
    }
    entries.push(r.value);
  }
  return { entries, raw: Buffer.concat(chunks), maxChunk };
}

function payloads(entries: DumpEntry[]): DumpPayloadEntry[] {
  return entries.filter((e): e is DumpPayloadEntry => e.kind === 'payload');
}

/** RESTORE key ttl payload REPLACE ABSTTL for every entry, pipelined, selecting databases as they change. */
async function restoreAll(c: Redis, entries: Iterable<DumpEntry> | AsyncIterable<DumpEntry>): Promise<number> {
  let n = 0;
  let db = -1;
  let p = c.pipeline();
  const flush = async () => {
    for (const [err] of (await p.exec()) ?? []) if (err) throw err;
    p = c.pipeline();
  };
  for await (const e of entries) {
    if (e.kind !== 'payload') throw new Error(`unexpected unsupported entry: ${e.reason}`);
    if (e.db !== db) {
      db = e.db;
      p.select(db);
    }
    p.call('RESTORE', e.key, String(e.expireAtMs ?? 0), e.payload, 'REPLACE', 'ABSTTL');
    if (++n % 500 === 0) await flush();
  }
  await flush();
  await c.select(0);
  return n;
}

/** Expiries agree: exactly where both sides read PEXPIRETIME, within 2 s where one side had to use PTTL. */
function expectSameExpiry(got: number | null, want: number | null, exact: boolean, what: string): void {
  if (want === null || got === null || exact) {
    expect(got, what).toBe(want);
  } else {
    expect(Math.abs(got - want), what).toBeLessThan(2000);
  }
}

/** Flat [k, v, ...] or RESP3 map replies, as a record. */
function record(reply: unknown): Record<string, unknown> {
  if (Array.isArray(reply)) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) o[String(reply[i])] = reply[i + 1];
    return o;
  }
  if (reply instanceof Map) return Object.fromEntries([...reply].map(([k, v]) => [String(k), v]));
  return reply as Record<string, unknown>;
}

/** A stream's consumer groups as RESTORE must keep them: names, last IDs, consumers, and every pending entry. */
async function streamGroups(c: Redis, key: Buffer): Promise<unknown[]> {
  const groups = (await c.call('XINFO', 'GROUPS', key)) as unknown[];
  const out: unknown[] = [];
  for (const g of groups.map(record)) {
    const name = String(g.name);
    const pending = (await c.call('XPENDING', key, name, '-', '+', '100000')) as Array<[string, string, number, number]>;
    const consumers = ((await c.call('XINFO', 'CONSUMERS', key, name)) as unknown[]).map(record).map((x) => [String(x.name), Number(x.pending)]);
    out.push({
      name,
      last: String(g['last-delivered-id']),
      pending: pending.map(([pid, consumer, , count]) => [String(pid), String(consumer), Number(count)]),
      consumers: consumers.sort(),
    });
  }
  return out.sort((a, b) => String((a as { name: string }).name).localeCompare((b as { name: string }).name));
}

/** How restored keys compared: byte-identical DUMP, or the same content (type, size, digest, stream groups). */
interface Compared {
  identical: number;
  sameContent: number;
  /** OBJECT ENCODING of the keys compared by content on the same release. */
  reordered: Set<string>;
}

/**
 * One restored key against its source. On the same release the DUMP must be identical, except for sets and
 * hashes in a hashtable: their DUMP lists members in hash-table order, and each process seeds its hash
 * function at random, so a copy lists them in another order. Those, and every key on a newer release (which
 * re-encodes some values, e.g. ziplist → listpack), must have the same content. The expiry must always agree.
 */
async function expectRestored(c: Redis, t: Redis, k: SourceKey, kinds: [ServerKind, ServerKind], out: Compared): Promise<void> {
  const [kind, targetKind] = kinds;
  await Promise.all([c.select(k.db), t.select(k.db)]);
  const what = `${k.key.toString().slice(0, 40)} (db ${k.db})`;
  const exact = exactTtl(kind) && exactTtl(targetKind);
  expectSameExpiry(await expiryOf(t, k.key, exactTtl(targetKind)), k.expireAtMs, exact, `expiry of ${what}`);
  if (targetKind === kind) {
    if ((await t.dumpBuffer(k.key))?.equals(k.dump)) {
      out.identical++;
      return;
    }
    const enc = String(await t.call('OBJECT', 'ENCODING', k.key));
    expect(`${String(await t.type(k.key))}/${enc}`, `DUMP of ${what} differs`).toMatch(/^(set|hash)\/hashtable$/);
    out.reordered.add(`${String(await t.type(k.key))}/${enc}`);
  }
  const opts = { pexpiretime: false };
  const [a, b] = await Promise.all([readFingerprint(c, k.key, opts), readFingerprint(t, k.key, opts)]);
  expect(a?.digest).toMatch(/^[0-9a-f]{64}$/);
  expect(b?.type, `type of ${what}`).toBe(a?.type);
  expect(b?.size, `size of ${what}`).toBe(a?.size);
  expect(b?.digest, `content of ${what}`).toBe(a?.digest);
  if (a?.type === 'stream') expect(await streamGroups(t, k.key), `groups of ${what}`).toEqual(await streamGroups(c, k.key));
  out.sameContent++;
}

/** Cuts `raw` again in seeded random chunks (some a single byte); the entries must be the same. */
function recut(raw: Buffer, seed: number): { entries: DumpEntry[]; maxHeld: number; maxChunk: number } {
  const rand = prng(seed);
  const cutter = new DumpPayloadCutter();
  const entries: DumpEntry[] = [];
  let maxHeld = 0;
  let maxChunk = 0;
  for (let at = 0; at < raw.length; ) {
    const r = rand();
    const n = r < 0.3 ? 1 : r < 0.6 ? 1 + Math.floor(rand() * 40) : 1 + Math.floor(rand() * 70_000);
    const chunk = Buffer.from(raw.subarray(at, at + n));
    at += chunk.length;
    maxChunk = Math.max(maxChunk, chunk.length);
    entries.push(...cutter.update(chunk));
    maxHeld = Math.max(maxHeld, cutter.heldBytes);
  }
  expect(cutter.finish().checksum).toBe('ok');
  return { entries, maxHeld, maxChunk };
}

function sameEntries(a: DumpEntry[], b: DumpEntry[]): void {
  expect(b.length).toBe(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    expect(y.db).toBe(x.db);
    expect(y.key.equals(x.key)).toBe(true);
    expect(y.expireAtMs).toBe(x.expireAtMs);
    if (x.kind === 'payload' && y.kind === 'payload') expect(y.payload.equals(x.payload), `payload of ${x.key.toString().slice(0, 40)}`).toBe(true);
    else expect(y.kind).toBe(x.kind);
  }
}

describe.each(SERVER_KINDS)('DUMP payloads cut from the RDB of %s', (kind) => {
  let src: RedisServer;
  let c: Redis;
  let counts: Map<number, number>;
  let state: Map<string, SourceKey>;
  let cut: Awaited<ReturnType<typeof cutLive>>;

  beforeAll(async () => {
    src = await server(kind);
    c = connect(src);
    counts = await fillEveryEncoding(c);
    // A function library (7.0+): a non-key record (FUNCTION2) the cutter must step over.
    if (kind !== 'redis-6.2') await c.call('FUNCTION', 'LOAD', "#!lua name=tyklib\nredis.register_function('tykf', function() return 1 end)");
    state = await readKeyspace(c, kind);
    cut = await cutLive(src);
  });

  it('cuts one payload per key, equal byte for byte to the server\'s own DUMP, with the key\'s expiry', () => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const encodings = new Set([...state.values()].map((k) => k.encoding));
    for (const e of ['string/int', 'string/embstr', 'string/raw', 'list/quicklist', 'set/intset', 'set/hashtable', 'zset/skiplist', 'hash/hashtable', 'stream/stream']) {
      expect(encodings).toContain(e);
    }
    expect(encodings.size).toBeGreaterThanOrEqual(11);
    expect(total).toBeGreaterThan(45);
    expect(state.size).toBe(total);
    const got = payloads(cut.entries);
    expect(got.length).toBe(cut.entries.length);
    expect(new Set(got.map((e) => id(e.db, e.key))).size).toBe(total);
    for (const e of got) {
      const want = state.get(id(e.db, e.key));
      expect(want, `key ${e.key.toString().slice(0, 40)} in db ${e.db}`).toBeDefined();
      expect(e.payload.equals(want!.dump), `payload of ${e.key.toString().slice(0, 40)}`).toBe(true);
      expectSameExpiry(e.expireAtMs, want!.expireAtMs, exactTtl(kind), `expiry of ${e.key.toString().slice(0, 40)}`);
    }
    // The keys over 64 KiB (which the parser's key capture cuts short) come out whole.
    expect(got.filter((e) => e.key.length > 65536).map((e) => e.key.length).sort()).toEqual([70_008, 80_000]);
    expect(got.filter((e) => e.expireAtMs !== null)).toHaveLength(5);
    // The function library is in the file, and stepped over: no entry for it.
    expect(cut.raw.includes('tyklib')).toBe(kind !== 'redis-6.2');
  });

  it('gives payloads the snapshot\'s RDB version, the one this server writes and accepts', async () => {
    const header = Number(cut.raw.toString('latin1', 5, 9));
    const info = parseServerInfo(String(await c.info('server')));
    expect(maxDumpVersion(info)).toBe(header);
    for (const e of payloads(cut.entries)) expect(dumpPayloadVersion(e.payload)).toBe(header);
  });

  it('cuts the same payloads whatever the chunk boundaries, holding one record and one chunk at most', () => {
    for (const seed of [1, 2, 3]) {
      const again = recut(cut.raw, seed);
      sameEntries(cut.entries, again.entries);
      const biggest = Math.max(...payloads(cut.entries).map((e) => e.payload.length + e.key.length + 16));
      expect(again.maxHeld).toBeLessThanOrEqual(biggest + again.maxChunk + 4096);
    }
  });

  it('rdb-file evidence (inspectRdbEvidence): the counts of a full inspection, and sampled payloads equal to the cutter\'s at any chunk size', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-evidence-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'dump.rdb');
    await writeFile(file, cut.raw);
    const restored = new Set(KEY_CLASSES);
    const full = await inspectRdbRecords(file, { inspectOnly: true, restored, sampleSize: 0, expectation: true });
    const byId = new Map(payloads(cut.entries).map((e) => [id(e.db, e.key), e]));
    const live = payloads(cut.entries).filter((e) => e.expireAtMs === null || e.expireAtMs > Date.now() + 60_000).length;
    for (const [chunkBytes, sampleSize] of [[97, 10_000], [4096, 7], [65_536, 10_000], [1 << 20, 3]] as const) {
      const ev = await inspectRdbEvidence(file, { restored, sampleSize, expectation: true, chunkBytes });
      expect(ev.records).toBe(full.records);
      expect(ev.perClass).toEqual(full.perClass);
      expect(ev.dbs).toEqual(full.dbs);
      for (const db of full.dbs) for (const cls of KEY_CLASSES) expect(ev.expectation!.inFile(db, cls)).toBe(full.expectation!.inFile(db, cls));
      // Every live key is offered; a sample as large as the keyspace holds each one, whole, even across chunks.
      expect(ev.sample!.population).toBeGreaterThanOrEqual(live);
      expect(ev.sample!.entries).toHaveLength(Math.min(sampleSize, ev.sample!.population));
      for (const e of ev.sample!.entries) {
        const want = byId.get(id(e.db, e.key));
        expect(want, `sampled key ${e.key.toString('hex').slice(0, 40)} (chunks of ${chunkBytes})`).toBeDefined();
        expect(e.sha256).toBe(createHash('sha256').update(want!.payload).digest('hex'));
        expect(e.bytes).toBe(want!.payload.length);
        if (e.payload) expect(e.payload.equals(want!.payload)).toBe(true);
        expect(e.expiresAtMs).toBe(want!.expireAtMs);
      }
    }
  });

  it('a live restore\'s look before writing (inspectRdbForLive): the thorough inspection\'s figures, CRC-64 checked, and the records read again whole', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-live-inspect-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'dump.rdb');
    await writeFile(file, cut.raw);
    const restored = new Set(KEY_CLASSES);
    const full = await inspectRdbRecords(file, { restored, sampleSize: 0, expectation: true });
    const lean = await inspectRdbForLive(file, { restored, sampleSize: 5, expectation: true });
    expect([lean.records, lean.dbs, lean.perClass, lean.duplicates, lean.payloadVersion, lean.writtenBy]).toEqual([full.records, full.dbs, full.perClass, full.duplicates, full.payloadVersion, full.writtenBy]);
    for (const db of full.dbs) for (const cls of KEY_CLASSES) expect(lean.expectation!.inFile(db, cls)).toBe(full.expectation!.inFile(db, cls));
    expect(lean.sample!.entries.length).toBe(Math.min(5, lean.sample!.population));
    // The write pass reads every record again, with its payload.
    let again = 0;
    for await (const batch of lean.open()) again += batch.length;
    expect(again).toBe(full.records);
    // A flipped byte in the file's last value is caught by the CRC-64 (no server loads this file to check it).
    const bad = Buffer.from(cut.raw);
    bad[bad.length - 12] ^= 0x01;
    await writeFile(file, bad);
    await expect(inspectRdbForLive(file, { restored, sampleSize: 0, expectation: false })).rejects.toThrow(/checksum|CRC/i);
  });

  it.each(newerOrSame(kind))('RESTOREs (ABSTTL) into a fresh %s: same DUMP on the same server, same values and expiries on a newer one', async (targetKind) => {
    const target = await server(targetKind);
    const t = connect(target);
    if (targetKind === kind) {
      // Straight from the replication stream to the target: nothing is collected on the way.
      const { stream } = await openRdbStream({ host: src.host, port: src.port });
      expect(await restoreAll(t, cutDumpPayloads(stream as AsyncIterable<Buffer>))).toBe(state.size);
    } else {
      expect(await restoreAll(t, cut.entries)).toBe(state.size);
    }
    expect(await keysPerDb(t)).toEqual(counts);
    const out: Compared = { identical: 0, sameContent: 0, reordered: new Set() };
    for (const k of state.values()) await expectRestored(c, t, k, [kind, targetKind], out);
    await Promise.all([c.select(0), t.select(0)]);
    expect(out.identical + out.sameContent).toBe(state.size);
    // On the same release every key but hashtable sets and hashes came back byte for byte (expectRestored).
    if (targetKind === kind) expect(out.identical).toBeGreaterThan(state.size / 2);
  });
});

describe.each(SERVER_KINDS)('fuzz: seeded random keyspaces on %s', (kind) => {
  let src: RedisServer;
  let dst: RedisServer;
  let c: Redis;
  let t: Redis;

  beforeAll(async () => {
    [src, dst] = await Promise.all([server(kind), server(kind)]);
    c = connect(src);
    t = connect(dst);
  });

  it.each([101, 202, 303])('seed %i: every payload is the source\'s DUMP, RESTOREs to the same DUMP, and cuts the same in any chunks', async (seed) => {
    await Promise.all([c.flushall(), t.flushall()]);
    const counts = await fillRandom(c, seed, 400);
    const state = await readKeyspace(c, kind);
    expect(state.size).toBeGreaterThan(300);
    // The keyspace covers the small and big encodings of every type (6.2 has 11 in all, 7.2+ more).
    expect(new Set([...state.values()].map((k) => k.encoding)).size).toBeGreaterThanOrEqual(11);
    const cut = await cutLive(src);
    const got = payloads(cut.entries);
    expect(got.length).toBe(state.size);
    for (const e of got) {
      const want = state.get(id(e.db, e.key));
      expect(want?.dump.equals(e.payload), `payload of ${e.key.toString('hex').slice(0, 40)} (seed ${seed})`).toBe(true);
      expectSameExpiry(e.expireAtMs, want!.expireAtMs, exactTtl(kind), 'expiry');
    }
    sameEntries(cut.entries, recut(cut.raw, seed).entries);
    expect(await restoreAll(t, cut.entries)).toBe(state.size);
    expect(await keysPerDb(t)).toEqual(counts);
    const out: Compared = { identical: 0, sameContent: 0, reordered: new Set() };
    for (const k of state.values()) await expectRestored(c, t, k, [kind, kind], out);
    await Promise.all([c.select(0), t.select(0)]);
    expect(out.identical + out.sameContent).toBe(state.size);
    expect(out.identical).toBeGreaterThan(state.size / 2);
  });
});
