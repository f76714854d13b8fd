import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TykdrError } from '../../src/core/errors.js';
import { Crc64 } from '../../src/backends/redis/formats/crc64.js';
import { redisTypeOf } from '../../src/backends/redis/formats/rdb-constants.js';
import { RdbInspector, type RdbFacts } from '../../src/backends/redis/formats/rdb-inspector.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';

interface SeenKey {
  db: number;
  key: string;
  type: number;
  expiresAtMs: number | null;
  truncated: boolean;
}

/** Runs `data` through an inspector in chunks of `size` bytes. */
async function inspect(data: Buffer, size: number, borrowKeys = false): Promise<{ facts: RdbFacts; out: Buffer; keys: SeenKey[] }> {
  const chunks: Buffer[] = [];
  for (let o = 0; o < data.length; o += size) chunks.push(data.subarray(o, o + size));
  const keys: SeenKey[] = [];
  const ins = new RdbInspector({
    borrowKeys,
    onKey: (db, key, type, expiresAtMs, truncated) => keys.push({ db, key: key.toString('latin1'), type, expiresAtMs, truncated }),
  });
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), ins, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { facts: ins.facts(), out: Buffer.concat(out), keys };
}

async function inspectError(data: Buffer, size = 65536): Promise<TykdrError> {
  const err = await inspect(data, size).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TykdrError);
  expect((err as TykdrError).kind).toBe('integrityError');
  return err as TykdrError;
}

// Populates the selected database with every data type Redis 7.0 writes, in its small and large encodings.
const POPULATE = `
local p = ARGV[1]
redis.call('SET', p..'s:small', 'hello')
redis.call('SET', p..'s:int', '12345')
redis.call('SET', p..'s:neg', '-7')
redis.call('SET', p..'s:bigint', '12345678901234')
redis.call('SET', p..'s:long', string.rep('abc', 10000))
redis.call('SET', p..'s:huge', string.rep('0123456789abcdef', 20000))
redis.call('SET', p..'apikey-'..string.rep('0', 100), '{"org_id":"x"}')
redis.call('SET', p..string.rep('k', 70000), 'a key longer than 64 KiB')
redis.call('RPUSH', p..'l:small', 'a', 'b', '1', '2')
for i=1,2000 do redis.call('RPUSH', p..'l:big', string.rep('x', 50)..i) end
redis.call('RPUSH', p..'l:plain', string.rep('p', 20000), 'q')
redis.call('SADD', p..'set:int', 1, 2, 3, 100000)
redis.call('SADD', p..'set:str', 'a', 'b', 'c')
for i=1,600 do redis.call('SADD', p..'set:big', 'm'..i) end
redis.call('ZADD', p..'z:small', 1, 'a', 2.5, 'b')
for i=1,300 do redis.call('ZADD', p..'z:big', i/3, 'member'..i) end
redis.call('HSET', p..'h:small', 'f1', 'v1', 'f2', '2')
for i=1,600 do redis.call('HSET', p..'h:big', 'field'..i, string.rep('v', i % 100)) end
redis.call('HSET', p..'h:bigval', 'f', string.rep('z', 1000))
for i=1,300 do redis.call('XADD', p..'st', '*', 'k', 'v'..i, 'n', i) end
redis.call('XGROUP', 'CREATE', p..'st', 'g1', '0')
redis.call('XGROUP', 'CREATE', p..'st', 'g2', '$')
redis.call('XREADGROUP', 'GROUP', 'g1', 'c1', 'COUNT', 5, 'STREAMS', p..'st', '>')
redis.call('XREADGROUP', 'GROUP', 'g1', 'c2', 'COUNT', 3, 'STREAMS', p..'st', '>')
redis.call('XADD', p..'st:empty', 'MAXLEN', '0', '*', 'a', 'b')
redis.call('SET', p..'ttl:1', 'x', 'EX', 3600)
redis.call('SET', p..'ttl:2', 'y', 'PX', 7200000)
redis.call('RPUSH', p..'ttl:list', 'a')
redis.call('EXPIRE', p..'ttl:list', 100000)
redis.call('SET', p..'flip', 'FLIP'..string.rep('-', 2000))
return 'ok'
`;
// Every key of the selected db as (name, type, absolute expiry in ms or -1).
const LIST_KEYS = `
local r = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  r[#r+1] = k; r[#r+1] = redis.call('TYPE', k).ok; r[#r+1] = tostring(redis.call('PEXPIRETIME', k))
end
return r`;

describe('RdbInspector on RDB files written by a real redis-server', () => {
  let redis: RedisServer;
  let rdb: Buffer; // default settings (LZF on)
  let rdbPlain: Buffer; // rdbcompression no
  let rdbLfu: Buffer;
  let rdbLru: Buffer;
  const expected = new Map<string, { db: number; type: string; expiresAtMs: number | null }>();
  const keyspace: Record<string, { keys: number; expires: number }> = {};
  let version = '';

  const dump = async (name: string): Promise<Buffer> => {
    const file = path.join(redis.dir, name);
    await redis.cli('--rdb', file);
    return readFile(file);
  };

  beforeAll(async () => {
    redis = await startRedis();
    await redis.cli('EVAL', POPULATE, '0', 'a:');
    await redis.cli('-n', '1', 'EVAL', POPULATE, '0', 'b:');
    await redis.cli('-n', '5', 'SET', '4242', 'an integer-encoded key');
    await redis.cli('-n', '5', 'SET', '-17', 'a negative one');
    await redis.cli('FUNCTION', 'LOAD', "#!lua name=tykdrlib\nredis.register_function('echo1', function(keys, args) return args[1] end)");
    for (const db of ['0', '1', '5']) {
      const lines = (await redis.cli('-n', db, 'EVAL', LIST_KEYS, '0')).split('\n');
      for (let i = 0; i + 2 < lines.length; i += 3) {
        const at = Number(lines[i + 2]);
        expected.set(`${db}/${lines[i]}`, { db: Number(db), type: lines[i + 1]!, expiresAtMs: at >= 0 ? at : null });
      }
    }
    for (const m of (await redis.cli('INFO', 'keyspace')).matchAll(/^db(\d+):keys=(\d+),expires=(\d+)/gm)) {
      keyspace[m[1]!] = { keys: Number(m[2]), expires: Number(m[3]) };
    }
    version = /redis_version:(\S+)/.exec(await redis.cli('INFO', 'server'))![1]!;
    rdb = await dump('default.rdb');
    await redis.cli('CONFIG', 'SET', 'rdbcompression', 'no');
    rdbPlain = await dump('plain.rdb');
    await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lfu');
    rdbLfu = await dump('lfu.rdb');
    await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    rdbLru = await dump('lru.rdb');
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('counts keys and expires per database as INFO keyspace does, and reads the AUX fields', async () => {
    const { facts, out } = await inspect(rdb, 65536);
    expect(out.equals(rdb)).toBe(true);
    expect(facts.checksum).toBe('ok');
    expect(facts.bytes).toBe(rdb.length);
    expect(facts.rdbVersion).toBeGreaterThanOrEqual(10);
    expect(facts.aux['redis-ver']).toBe(version);
    expect(facts.aux['redis-bits']).toBe('64');
    expect(Number(facts.aux.ctime)).toBeGreaterThan(1.7e9);
    expect(facts.aux['aof-base']).toBe('0');
    expect(Object.keys(facts.databases).sort()).toEqual(Object.keys(keyspace).sort());
    for (const [db, c] of Object.entries(keyspace)) {
      expect(facts.databases[db]).toMatchObject({ keys: c.keys, expires: c.expires, resizeKeys: c.keys, resizeExpires: c.expires });
    }
    expect(facts.totalKeys).toBe(expected.size);
  });

  it('reports every key with its database, type and absolute expiry', async () => {
    const { keys } = await inspect(rdb, 65536);
    expect(keys).toHaveLength(expected.size);
    const seenTypes = new Set<number>();
    for (const k of keys) {
      seenTypes.add(k.type);
      if (k.truncated) {
        expect(k.key).toHaveLength(64 * 1024);
        const full = [...expected.keys()].find((e) => e.startsWith(`${k.db}/${k.key}`));
        expect(full, k.key.slice(0, 20)).toBeDefined();
        continue;
      }
      const e = expected.get(`${k.db}/${k.key}`);
      expect(e, k.key).toBeDefined();
      expect(redisTypeOf(k.type)).toBe(e!.type);
      expect(k.expiresAtMs).toBe(e!.expiresAtMs);
    }
    expect(keys.filter((k) => k.truncated)).toHaveLength(2);
    // string, set (hashtable), hash (hashtable), zset2, set intset, hash listpack, zset listpack, quicklist2, stream v2
    expect([...seenTypes].sort((a, b) => a - b)).toEqual([0, 2, 4, 5, 11, 16, 17, 18, 19]);
  });

  it('gives identical bytes and facts whatever the chunk size, down to 1 byte', async () => {
    const whole = await inspect(rdb, rdb.length);
    for (const size of [65536, 4096, 1000, 17, 7, 2, 1]) {
      const r = await inspect(rdb, size);
      expect(r.out.equals(rdb), `chunk ${size}`).toBe(true);
      expect(r.facts).toEqual(whole.facts);
      expect(r.keys).toEqual(whole.keys);
    }
  });

  it('reports the same keys with borrowKeys (views into the chunk) as with copies, whatever the chunk size', async () => {
    const copies = await inspect(rdb, 65536);
    for (const size of [65536, 4096, 17, 1]) {
      const r = await inspect(rdb, size, true);
      expect(r.out.equals(rdb), `chunk ${size}`).toBe(true);
      expect(r.facts).toEqual(copies.facts);
      expect(r.keys).toEqual(copies.keys);
    }
  });

  it('reads dumps without compression, and with LFU / LRU metadata', async () => {
    const base = (await inspect(rdb, 65536)).facts;
    for (const [name, file] of [['plain', rdbPlain], ['lfu', rdbLfu], ['lru', rdbLru]] as const) {
      const { facts, keys } = await inspect(file, 4093);
      expect(facts.databases, name).toEqual(base.databases);
      expect(facts.checksum).toBe('ok');
      expect(keys).toHaveLength(expected.size);
    }
    expect(rdbPlain.length).toBeGreaterThan(rdb.length);
  });

  it('reports a zero checksum (rdbchecksum no) as disabled', async () => {
    const other = await startRedis({ args: ['--rdbchecksum', 'no'] });
    try {
      await other.cli('SET', 'a', '1');
      const file = path.join(other.dir, 'nock.rdb');
      await other.cli('--rdb', file);
      const { facts } = await inspect(await readFile(file), 3);
      expect(facts.checksum).toBe('disabled');
      expect(facts.totalKeys).toBe(1);
    } finally {
      await other.stop();
    }
    const zeroed = Buffer.from(rdb);
    zeroed.fill(0, zeroed.length - 8);
    expect((await inspect(zeroed, 65536)).facts.checksum).toBe('disabled');
  });

  it('fails a truncated dump with where it ends', async () => {
    const cut = (n: number) => rdb.subarray(0, n);
    for (const n of [9, 100, 5000, Math.floor(rdb.length / 2), rdb.length - 9]) {
      const err = await inspectError(cut(n), 4096);
      expect(err.message).toBe(`RDB ends after ${n} bytes, before the EOF marker: the dump was cut short`);
    }
    expect((await inspectError(cut(rdb.length - 3))).message).toMatch(/^RDB ends after \d+ bytes, inside the 8-byte checksum/);
    expect((await inspectError(cut(4))).message).toMatch(/inside its 9-byte header: the dump was cut short/);
    expect((await inspectError(Buffer.alloc(0))).message).toMatch(/^RDB is empty/);
  });

  it('fails a flipped byte with a checksum mismatch', async () => {
    const at = rdbPlain.indexOf('FLIP----') + 1000;
    expect(at).toBeGreaterThan(1000);
    const bad = Buffer.from(rdbPlain);
    bad[at] = bad[at]! ^ 0x01;
    const err = await inspectError(bad, 1000);
    const good = new Crc64();
    good.update(rdbPlain.subarray(0, rdbPlain.length - 8));
    expect(err.message).toMatch(/^RDB checksum mismatch: computed [0-9a-f]{16}, file says [0-9a-f]{16}$/);
    expect(err.message).toContain(`file says ${good.digestHex()}`);
  });

  it('fails bytes after the checksum', async () => {
    const err = await inspectError(Buffer.concat([rdb, Buffer.from('xyz')]), 7);
    expect(err.message).toBe('RDB has 3 unexpected bytes after its end (EOF marker and checksum)');
  });

  it('hands bytes after the checksum to onTail, in order and whatever the chunk size (a Redis 6 AOF: RDB preamble, then commands)', () => {
    const tail = Buffer.from('*1\r\n$4\r\nPING\r\n'.repeat(50));
    const file = Buffer.concat([rdb, tail]);
    for (const size of [1, 7, 100, file.length]) {
      const got: Buffer[] = [];
      const ins = new RdbInspector({ onTail: (b) => got.push(Buffer.from(b)) });
      for (let at = 0; at < file.length; at += size) ins.update(file.subarray(at, at + size));
      const facts = ins.complete();
      expect(Buffer.concat(got).equals(tail), `chunk size ${size}`).toBe(true);
      expect(ins.tailBytes).toBe(tail.length);
      expect(facts.checksum).toBe('ok');
    }
  });
});

describe('RdbInspector on malformed input', () => {
  it('fails garbage on its first bytes, without waiting for the end', async () => {
    const src = new PassThrough();
    const ins = new RdbInspector();
    src.pipe(ins);
    ins.resume();
    src.write(Buffer.from('<html><body>Not Found</body></html>'));
    const [err] = (await once(ins, 'error').catch((e: unknown) => [e])) as [TykdrError];
    expect(err.kind).toBe('integrityError');
    expect(err.message).toBe('not an RDB file: header "<html><bo", expected "REDIS" and a 4-digit version');
    src.destroy();
  });

  it('names a version newer than it understands', async () => {
    const err = await inspectError(Buffer.concat([Buffer.from('REDIS0013'), Buffer.alloc(100)]));
    expect(err.message).toMatch(/^RDB version 13 is newer than this tool understands/);
    expect((await inspectError(Buffer.from('REDISxx10\xff', 'latin1'))).message).toMatch(/^not an RDB file: header "REDISxx10"/);
  });

  it('fails an unknown record type at once, naming the offset', async () => {
    const data = Buffer.concat([Buffer.from('REDIS0010'), Buffer.from([0xfe, 0x00, 0x1e, 0x01, 0x61])]);
    for (const size of [65536, 1]) {
      expect((await inspectError(data, size)).message).toBe('RDB is corrupt: unknown record type 30 (0x1e) at byte 11');
    }
  });
});

/** Writes RDB records by hand, for the encodings a Redis 7.0 server never writes. */
class RdbBuilder {
  private readonly parts: Buffer[] = [];
  constructor(version = 12) {
    this.raw(Buffer.from(`REDIS${String(version).padStart(4, '0')}`));
  }
  raw(b: Buffer | number[]): this {
    this.parts.push(Buffer.isBuffer(b) ? b : Buffer.from(b));
    return this;
  }
  len(n: number, wide = false): this {
    if (wide) {
      const b = Buffer.alloc(9);
      b[0] = 0x81;
      b.writeBigUInt64BE(BigInt(n), 1);
      return this.raw(b);
    }
    if (n < 64) return this.raw([n]);
    if (n < 16384) return this.raw([0x40 | (n >> 8), n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = 0x80;
    b.writeUInt32BE(n, 1);
    return this.raw(b);
  }
  str(s: string | Buffer): this {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    return this.len(b.length).raw(b);
  }
  int(n: number): this {
    if (n >= -128 && n < 128) return this.raw([0xc0, n & 0xff]);
    const b = Buffer.alloc(5);
    if (n >= -32768 && n < 32768) {
      b[0] = 0xc1;
      b.writeInt16LE(n, 1);
      return this.raw(b.subarray(0, 3));
    }
    b[0] = 0xc2;
    b.writeInt32LE(n, 1);
    return this.raw(b);
  }
  lzf(compressed: Buffer | number[], ulen: number): this {
    const c = Buffer.isBuffer(compressed) ? compressed : Buffer.from(compressed);
    return this.raw([0xc3]).len(c.length).len(ulen).raw(c);
  }
  u64(n: number): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return this.raw(b);
  }
  key(type: number, name: string): this {
    return this.raw([type]).str(name);
  }
  /** Appends the EOF opcode and the CRC-64 of everything before the trailer. */
  end(): Buffer {
    this.raw([0xff]);
    const body = Buffer.concat(this.parts);
    const c = new Crc64();
    c.update(body);
    const trailer = Buffer.alloc(8);
    trailer.writeBigUInt64LE(BigInt(`0x${c.digestHex()}`));
    return Buffer.concat([body, trailer]);
  }
}

/** LZF for n repeats of one byte: a 1-byte literal, then back references of up to 264 bytes at distance 1. */
function lzfRepeat(byte: number, n: number): Buffer {
  const out = [0, byte];
  let left = n - 1;
  while (left > 0) {
    const len = Math.min(left, 264);
    if (len < 3) {
      out.push(len - 1, ...Array<number>(len).fill(byte));
    } else if (len - 2 < 7) {
      out.push(((len - 2) << 5) | 0, 0);
    } else {
      out.push(0xe0, len - 2 - 7, 0);
    }
    left -= len;
  }
  return Buffer.from(out);
}

describe('RdbInspector on hand-written records of every other type and opcode', () => {
  const blob = Buffer.from('opaque-encoded-blob');
  const stream = (b: RdbBuilder, version: 1 | 2 | 3) => {
    b.len(1).str(Buffer.alloc(16, 1)).str(blob); // one listpack node
    b.len(10).len(1700000000000, true).len(3); // length, last id
    if (version >= 2) b.len(1).len(0).len(0).len(0).len(10); // first id, max deleted, entries added
    b.len(2); // groups
    for (const g of ['g1', 'g2']) {
      b.str(g).len(1700000000000, true).len(2);
      if (version >= 2) b.raw([0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]); // entries read: -1
      b.len(1).raw(Buffer.alloc(16, 2)).u64(1700000000123).len(1); // global PEL
      b.len(1).str('consumer').u64(1700000000456); // consumers: name, seen time
      if (version >= 3) b.u64(1700000000789); // active time
      b.len(1).raw(Buffer.alloc(16, 2)); // consumer PEL
    }
  };
  const build = (): Buffer => {
    const b = new RdbBuilder(12);
    b.raw([0xfa]).str('redis-ver').str('7.4.0');
    b.raw([0xfa]).str('ctime').int(1714557600);
    b.raw([0xfa]).str('aof-base').int(0);
    b.raw([0xfa]).str('lzf-aux').lzf([2, 0x61, 0x62, 0x63, 0xe0, 0, 2], 12);
    // module aux: id, when opcode (UINT), when, then one operand of every kind and EOF
    b.raw([0xf7]).len(0x123456789, true).len(2).len(2);
    b.len(1).len(5).len(2).len(7).len(3).raw(Buffer.alloc(4)).len(4).raw(Buffer.alloc(8)).len(5).str('modstr').len(0);
    b.raw([0xf5]).str("#!lua name=lib\nredis.register_function('f', function() return 1 end)");
    b.raw([0xf6]).str('oldlib').str('LUA').len(1).str('a description').str('return 1');
    b.raw([0xf6]).str('oldlib2').str('LUA').len(0).str('return 2');
    b.raw([0xfe]).len(0).raw([0xfb]).len(40).len(3);
    b.raw([0xf4]).len(1234).len(10).len(1);
    b.key(1, 'list:linked').len(2).str('a').int(7);
    b.key(3, 'zset:v1').len(3).str('a').raw([3]).raw(Buffer.from('1.5')).str('nan').raw([253]).str('inf').raw([254]);
    for (const t of [9, 10, 12, 13, 20, 23]) b.key(t, `blob:${t}`).str(blob);
    b.key(14, 'quicklist:v1').len(2).str(blob).lzf([2, 0x61, 0x62, 0x63, 0xe0, 0, 2], 12);
    stream(b.key(15, 'stream:v1'), 1);
    stream(b.key(19, 'stream:v2'), 2);
    stream(b.key(21, 'stream:v3'), 3);
    b.key(22, 'hash:ttl-pre-ga').len(2).len(0).str('f1').str('v1').len(1800000000000, true).str('f2').str('v2');
    b.key(24, 'hash:ttl').u64(1800000000000).len(2).len(0).str('f1').str('v1').len(5).str('f2').int(300);
    b.key(25, 'hash:ttl-lp').u64(1800000000000).str(blob);
    b.key(7, 'module:value').len(0x0a1b2c3d4e5, true).len(2).len(99).len(4).raw(Buffer.alloc(8)).len(0);
    b.raw([0xfe]).len(3);
    b.raw([0xfd]).raw([0x00, 0x5e, 0xd0, 0x65]).key(0, 'ttl:seconds').str('v');
    b.raw([0xfc]).u64(1800000000123).raw([0xf9, 5]).key(0, 'ttl:ms').str('v');
    b.raw([0xf8]).len(3600).raw([0]).int(1234).str('int16 key');
    b.raw([0]).int(-5).str('int8 key');
    b.raw([0]).int(123456789).str('int32 key');
    b.raw([0]).lzf([2, 0x61, 0x62, 0x63, 0xe0, 0, 2], 12).str('an LZF-compressed key');
    b.raw([0]).lzf(lzfRepeat(0x78, 100_000), 100_000).str('a 100 kB LZF key');
    b.raw([0]).str(Buffer.alloc(70_000, 0x79)).str('a 70 kB key');
    b.raw([0]).str('big:value').str(Buffer.alloc(300_000, 0x7a));
    b.raw([0]).str('big:lzf').lzf(lzfRepeat(0x30, 50_000), 50_000);
    return b.end();
  };

  it('skips every value and reports every key, whatever the chunk size', async () => {
    const data = build();
    const whole = await inspect(data, data.length);
    expect(whole.facts).toEqual({
      rdbVersion: 12,
      aux: { 'redis-ver': '7.4.0', ctime: '1714557600', 'aof-base': '0', 'lzf-aux': 'abcabcabcabc' },
      databases: { '0': { keys: 16, expires: 0, resizeKeys: 40, resizeExpires: 3 }, '3': { keys: 10, expires: 2 } },
      totalKeys: 26,
      checksum: 'ok',
      bytes: data.length,
    });
    const names = whole.keys.map((k) => (k.truncated ? `${k.key.slice(0, 3)}…(${k.key.length})` : k.key));
    expect(names).toEqual([
      'list:linked', 'zset:v1', 'blob:9', 'blob:10', 'blob:12', 'blob:13', 'blob:20', 'blob:23', 'quicklist:v1',
      'stream:v1', 'stream:v2', 'stream:v3', 'hash:ttl-pre-ga', 'hash:ttl', 'hash:ttl-lp', 'module:value',
      'ttl:seconds', 'ttl:ms', '1234', '-5', '123456789', 'abcabcabcabc', 'xxx…(65536)', 'yyy…(65536)',
      'big:value', 'big:lzf',
    ]);
    expect(whole.keys.map((k) => k.db)).toEqual([...Array<number>(16).fill(0), ...Array<number>(10).fill(3)]);
    expect(whole.keys.map((k) => k.expiresAtMs).filter((e) => e !== null)).toEqual([0x65d05e00 * 1000, 1800000000123]);
    expect(whole.keys.map((k) => k.type)).toEqual([1, 3, 9, 10, 12, 13, 20, 23, 14, 15, 19, 21, 22, 24, 25, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(whole.keys.map((k) => redisTypeOf(k.type))).not.toContain(undefined);
    for (const size of [4096, 100, 13, 1]) {
      const r = await inspect(data, size);
      expect(r.out.equals(data)).toBe(true);
      expect(r.facts, `chunk ${size}`).toEqual(whole.facts);
      expect(r.keys).toEqual(whole.keys);
    }
  });

  it('refuses pre-release module values and unknown module opcodes clearly', async () => {
    const pre = new RdbBuilder(8).key(6, 'm').len(1).end();
    expect((await inspectError(pre)).message).toBe(
      'RDB holds a value in the pre-release module format (type 6, Redis 4.0 release candidates): module values not supported (at byte 9)',
    );
    const badOp = new RdbBuilder(10).key(7, 'm').len(1).len(9).end();
    expect((await inspectError(badOp)).message).toBe('RDB is corrupt: unknown module value opcode 9 at byte 13');
  });

  it('passes a listener error through, and fails a corrupt LZF string', async () => {
    const data = new RdbBuilder(10).key(0, 'k').str('v').end();
    const ins = new RdbInspector({
      onKey: () => {
        throw new Error('listener broke');
      },
    });
    await expect(pipeline(Readable.from([data]), ins, new PassThrough().resume())).rejects.toThrow('listener broke');
    const lzf = new RdbBuilder(10).raw([0]).lzf([2, 0x61, 0x62, 0x63, 0xe0, 0, 9], 12).str('v').end();
    expect((await inspectError(lzf)).message).toBe('RDB is corrupt: an invalid LZF-compressed string at byte 13');
  });
});
