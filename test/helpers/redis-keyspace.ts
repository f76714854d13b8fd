import { Redis } from 'ioredis';

/**
 * Keyspaces for the server-matrix tests: one with every type and encoding the three servers of the matrix
 * write (fillEveryEncoding), and seeded random ones (fillRandom). Commands only, no Lua: they run on every
 * server of the matrix alike.
 */

/** mulberry32: a small seeded PRNG, so that a failing fuzz case can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that do not compress (LZF finds no repeats), from the seeded generator. */
export function noise(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** An hour from now: expiries that stay in the future while a test runs. */
const later = (ms = 0) => Date.now() + 3_600_000 + ms;

/**
 * Every type and encoding, in databases 0, 3 and 15. Names say what each key exercises. Returns the
 * number of keys written per database.
 */
export async function fillEveryEncoding(client: Redis, opts: { lean?: boolean } = {}): Promise<Map<number, number>> {
  const lean = opts.lean === true;
  const rand = prng(20240611);
  const p = client.pipeline();
  p.select(0);
  // Strings: int, embstr, raw, compressible (LZF in the RDB), big (compressible and not), empty, negative int.
  p.set('str:int', '123456789');
  p.set('str:int-neg', '-42');
  p.set('str:int-big', '9223372036854775807');
  p.set('str:embstr', 'short value');
  p.set('str:raw', 'r'.repeat(10) + noise(rand, 60).toString('hex'));
  p.set('str:lzf', 'abc'.repeat(400));
  // lean: every encoding still, without the multi-megabyte values (for tests about access, not encodings).
  p.set('str:big-compressible', 'tyk-session-'.repeat(lean ? 2000 : 200_000));
  p.set('str:big-random', noise(rand, lean ? 20_000 : 3 * 1024 * 1024));
  p.set('str:empty', '');
  p.set('str:binary', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x0d]));
  // Keys the RDB encodes specially: integers, LZF-compressed, longer than the parser's 64 KiB key capture.
  p.set('12345', 'int-encoded key');
  p.set('-7', 'negative int key');
  p.set('k'.repeat(300), 'lzf-compressed key');
  p.set(Buffer.concat([Buffer.from('big-key:'), noise(rand, 70_000)]), 'key over 64 KiB, raw');
  p.set('K'.repeat(80_000), 'key over 64 KiB, LZF');
  p.set(Buffer.from([0, 0xff, 0x80, 0x0a]), 'binary key');
  // Lists: one small node, many nodes, big elements, compressed interior nodes (list-compress-depth).
  p.rpush('list:small', 'a', 'b', '1', '2');
  p.rpush('list:one', 'x');
  p.rpush('list:big', ...Array.from({ length: lean ? 2000 : 20_000 }, (_, i) => `element-${i}`));
  p.rpush('list:big-elements', ...Array.from({ length: 8 }, () => noise(rand, 20_000)));
  p.config('SET', 'list-compress-depth', '1');
  p.rpush('list:compressed', ...Array.from({ length: 5000 }, (_, i) => `compressible-element-${i % 10}`));
  p.config('SET', 'list-compress-depth', '0');
  // Sets: intset, small strings (listpack on 7.2+, hashtable before), big (hashtable), big intset-turned-hashtable.
  p.sadd('set:intset', ...Array.from({ length: 100 }, (_, i) => String(i * 7 - 300)));
  p.sadd('set:intset-64', '9223372036854775807', '-9223372036854775808', '1');
  p.sadd('set:small', 'alpha', 'beta', 'gamma');
  p.sadd('set:big', ...Array.from({ length: 5000 }, (_, i) => `member-${i}`));
  p.sadd('set:big-ints', ...Array.from({ length: 2000 }, (_, i) => String(i)));
  // Sorted sets: small (ziplist/listpack), big (skiplist), special scores, long members.
  p.zadd('zset:small', 1, 'one', 2.5, 'two-and-a-half', -3, 'minus-three');
  p.zadd('zset:special', 'inf', 'pos-inf', '-inf', 'neg-inf', 0, 'zero', '1e-300', 'tiny', '3.141592653589793', 'pi');
  p.zadd('zset:big', ...Array.from({ length: 5000 }, (_, i) => [String(i * 1.25), `m${i}`]).flat());
  p.zadd('zset:long-member', 1, 'x'.repeat(200));
  // Hashes: small (ziplist/listpack), big (hashtable), a long value (hashtable), integer fields and values.
  p.hset('hash:small', 'field', 'value', 'n', '42');
  p.hset('hash:big', ...Array.from({ length: 5000 }, (_, i) => [`f${i}`, `v${i}`]).flat());
  p.hset('hash:long-value', 'f', 'v'.repeat(500));
  p.hset('hash:ints', '1', '2', '3', '-4');
  // Streams: entries, deleted entries, consumer groups with pending entries and consumers; an empty stream with a group.
  for (let i = 0; i < 300; i++) p.xadd('stream:main', `${1_700_000_000_000 + i}-${i % 3}`, 'n', String(i), 'payload', `data-${i}`);
  p.xdel('stream:main', `${1_700_000_000_000 + 5}-2`, `${1_700_000_000_000 + 6}-0`);
  p.xgroup('CREATE', 'stream:main', 'g1', '0');
  p.xgroup('CREATE', 'stream:main', 'g2', '$');
  p.xreadgroup('GROUP', 'g1', 'alice', 'COUNT', '10', 'STREAMS', 'stream:main', '>');
  p.xreadgroup('GROUP', 'g1', 'bob', 'COUNT', '5', 'STREAMS', 'stream:main', '>');
  p.xack('stream:main', 'g1', `${1_700_000_000_000 + 0}-0`);
  p.xgroup('CREATE', 'stream:empty', 'g', '$', 'MKSTREAM');
  p.xadd('stream:emptied', '1-1', 'a', 'b');
  p.xdel('stream:emptied', '1-1');
  // TTLs (absolute, an hour ahead) on several types.
  p.set('ttl:str', 'expiring', 'PXAT', later(1));
  p.rpush('ttl:list', 'a');
  p.pexpireat('ttl:list', later(2));
  p.hset('ttl:hash', 'a', 'b');
  p.pexpireat('ttl:hash', later(3));
  p.xadd('ttl:stream', '5-5', 'a', 'b');
  p.pexpireat('ttl:stream', later(4));
  // Databases above 0.
  p.select(3);
  p.set('db3:str', 'three');
  p.sadd('db3:set', 'a', 'b');
  p.set('db3:ttl', 'x', 'PXAT', later(5));
  p.select(15);
  p.zadd('db15:zset', 1, 'a');
  p.set('12345', 'same key, other database');
  p.select(0);
  const res = await p.exec();
  for (const [err] of res ?? []) if (err) throw err;
  return keysPerDb(client);
}

/** A seeded random keyspace of about `n` keys of every type, sizes from empty to tens of KiB, some with TTLs. */
export async function fillRandom(client: Redis, seed: number, n: number): Promise<Map<number, number>> {
  const rand = prng(seed);
  const int = (max: number) => Math.floor(rand() * max);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]!;
  // Per key: small elements only (so collections stay listpack/ziplist/intset up to 128 entries), or any size.
  let small = false;
  const elem = (): Buffer | string => {
    switch (int(small ? 2 : 5)) {
      case 0:
        return String(int(1_000_000) - 500_000);
      case 1:
        return small ? `e${int(1000)}` : noise(rand, int(40));
      case 2:
        return 'rep'.repeat(1 + int(300));
      case 3:
        return noise(rand, int(3000));
      default:
        return `e${int(1000)}`;
    }
  };
  // Now and then a collection big enough for hashtable / skiplist / several list nodes (over 128 and 512 entries).
  const count = (small: number) => 1 + int(rand() < 0.08 ? 700 : small);
  const many = (small: number) => Array.from({ length: count(small) }, elem);
  const p = client.pipeline();
  let db = 0;
  for (let i = 0; i < n; i++) {
    if (rand() < 0.05) {
      db = pick([0, 1, 2, 7]);
      p.select(db);
    }
    small = rand() < 0.5;
    const key = rand() < 0.1 ? String(i * 10 + int(10)) : `fuzz:${seed}:${i}:${noise(rand, int(6)).toString('hex')}`;
    switch (int(6)) {
      case 0:
        p.set(key, elem());
        break;
      case 1:
        p.rpush(key, ...many(30));
        break;
      case 2:
        p.sadd(key, ...(rand() < 0.4 ? Array.from({ length: count(20) }, () => String(int(1 << 20))) : many(20)));
        break;
      case 3:
        p.zadd(key, ...many(20).flatMap((m) => [String(rand() < 0.5 ? int(1000) : rand() * 1e6 - 5e5), m]));
        break;
      case 4:
        p.hset(key, ...many(20).flatMap((f) => [f, elem()]));
        break;
      default: {
        const entries = count(20);
        for (let e = 0; e < entries; e++) p.xadd(key, '*', 'f', elem(), 'g', String(e));
        if (rand() < 0.5) {
          p.xgroup('CREATE', key, 'grp', '0');
          p.xreadgroup('GROUP', 'grp', `c${int(3)}`, 'COUNT', String(1 + int(entries)), 'STREAMS', key, '>');
        }
      }
    }
    if (rand() < 0.2) p.pexpireat(key, later(int(1_000_000)));
  }
  p.select(0);
  const res = await p.exec();
  for (const [err] of res ?? []) if (err) throw err;
  return keysPerDb(client);
}

/** DBSIZE of every database that holds keys (from INFO keyspace). */
export async function keysPerDb(client: Redis): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const line of String(await client.info('keyspace')).split(/\r?\n/)) {
    const m = /^db(\d+):keys=(\d+)/.exec(line);
    if (m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}

export interface KeyState { type: string; value: string; expireAt: number }

/** Every key of every database: type, a type-aware value, and the absolute expiry (ms, -1 none). */
export async function readKeyspace(port: number): Promise<Map<string, KeyState>> {
  const out = new Map<string, KeyState>();
  const hex = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('hex') : Array.isArray(v) ? v.map(hex) : v);
  const admin = new Redis({ port, lazyConnect: true });
  await admin.connect();
  const dbs = [...String(await admin.info('keyspace')).matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
  admin.disconnect();
  for (const db of dbs) {
    const r = new Redis({ port, db, lazyConnect: true });
    await r.connect();
    for (const key of await r.keysBuffer('*')) {
      const type = await r.type(key);
      let value: unknown;
      if (type === 'string') value = await r.getBuffer(key);
      else if (type === 'hash') value = ((await r.callBuffer('HGETALL', key)) as Buffer[]).map((b) => b.toString('hex')).sort();
      else if (type === 'list') value = await r.lrangeBuffer(key, 0, -1);
      else if (type === 'set') value = ((await r.smembersBuffer(key)) as Buffer[]).map((b) => b.toString('hex')).sort();
      else if (type === 'zset') {
        // Scores as numbers: servers spell infinities differently ("inf", "Infinity").
        const raw = (await r.callBuffer('ZRANGE', key, '0', '-1', 'WITHSCORES')) as Array<Buffer | Buffer[]>;
        // A flat [member, score, ...] list, or [member, score] pairs, depending on the protocol the server speaks.
        const pairs = raw.length > 0 && Array.isArray(raw[0]) ? (raw as Buffer[][]) : (raw as Buffer[]).flatMap((m, i, all) => (i % 2 === 0 ? [[m, all[i + 1]!]] : []));
        const score = (t: string) => (/^-?inf/i.test(t) ? (t.startsWith('-') ? -Infinity : Infinity) : Number(t));
        value = pairs.map(([m, sc]) => [m!.toString('hex'), String(score(String(sc)))]);
      } else if (type === 'stream') {
        // Entries, and per group the fields every version reports (7.0 adds entries-read and lag).
        const groups = ((await r.call('XINFO', 'GROUPS', key)) as unknown[][]).map((g) => {
          const f: Record<string, unknown> = {};
          for (let i = 0; i < g.length; i += 2) f[String(g[i])] = g[i + 1];
          return [f.name, f.consumers, f.pending, f['last-delivered-id']];
        });
        value = [await r.callBuffer('XRANGE', key, '-', '+'), groups];
      }
      const pttl = await r.pttl(key);
      // Compare expiries to the second: PTTL is read at different moments on the two servers.
      out.set(`${db}/${key.toString('hex')}`, { type, value: JSON.stringify(hex(value)), expireAt: pttl < 0 ? -1 : Math.round((Date.now() + pttl) / 1000) });
    }
    r.disconnect();
  }
  return out;
}

export function diffKeyspaces(a: Map<string, KeyState>, b: Map<string, KeyState>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) out.push(`missing ${k}`);
    else if (w.type !== v.type || w.value !== v.value) out.push(`value of ${k} (${v.type})`);
    else if (Math.abs(w.expireAt - v.expireAt) > 2) out.push(`expiry of ${k}: ${v.expireAt} vs ${w.expireAt}`);
  }
  for (const k of b.keys()) if (!a.has(k)) out.push(`extra ${k}`);
  return out;
}
