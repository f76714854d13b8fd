import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BSON } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveParser, readArchivePrelude } from '../../src/backends/mongo/archive-inspector.js';
import { Crc64Ecma } from '../../src/backends/mongo/crc64-ecma.js';
import { excludeArgs, isExcluded } from '../../src/backends/mongo/source/mongo-source.js';
import { displayUri, parseMongoUri, scrubMongoText, toolUri } from '../../src/backends/mongo/uri.js';
import { restoreArgs } from '../../src/backends/mongo/target/restore-mongo.js';
import { startFerret, type FerretServer } from '../helpers/mongo.js';
import { toolsBin } from '../helpers/paths.js';

let ferret: FerretServer;
let dir: string;
/** Archives of one database written by the real mongodump: one collection at a time, and four at once. */
let serial: Buffer;
let parallel: Buffer;
const COUNTS: Record<string, number> = { a: 900, b: 700, c: 500, d: 300, empty: 0 };

function parse(bytes: Buffer, chunk = bytes.length) {
  const p = new ArchiveParser();
  for (let i = 0; i < bytes.length; i += chunk) p.feed(bytes.subarray(i, i + chunk));
  p.end();
  return p.facts();
}

beforeAll(async () => {
  ferret = await startFerret();
  const db = (await ferret.client()).db('arch');
  for (const [name, n] of Object.entries(COUNTS)) {
    await db.createCollection(name);
    if (n) await db.collection(name).insertMany(Array.from({ length: n }, (_, i) => ({ i, name, pad: 'x'.repeat(200 + (i % 50)) })));
  }
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-mongo-archive-'));
  const cfg = path.join(dir, 'c.yaml');
  await writeFile(cfg, `uri: "${ferret.uri}"\n`, { mode: 0o600 });
  const dump = (n: number) => {
    const file = path.join(dir, `p${n}.archive`);
    execFileSync(path.join(toolsBin, 'mongodump'), [`--config=${cfg}`, '--db=arch', `--archive=${file}`, `--numParallelCollections=${n}`], { stdio: 'ignore' });
    return readFile(file);
  };
  serial = await dump(1);
  parallel = await dump(4);
});

afterAll(async () => {
  await Promise.all([ferret?.stop(), dir && rm(dir, { recursive: true, force: true })]);
});

describe('ArchiveParser against archives written by mongodump', () => {
  it('counts every namespace, empty ones included, and agrees with each CRC-64 mongodump wrote', () => {
    for (const bytes of [serial, parallel]) {
      const f = parse(bytes);
      expect(Object.fromEntries(Object.entries(f.namespaces).map(([k, v]) => [k, v.documents]))).toEqual(
        Object.fromEntries(Object.entries(COUNTS).map(([k, v]) => [`arch.${k}`, v])),
      );
      expect(f.namespaces['arch.empty']).toEqual({ documents: 0, bytes: 0, crc: '0000000000000000' });
      expect(f.archiveBytes).toBe(bytes.length);
    }
    expect(parse(serial).concurrentCollections).toBe(1);
    expect(parse(parallel).concurrentCollections).toBe(4);
  });

  it('follows interleaved segments (what parallel dumps of a busy server write)', () => {
    // FerretDB serves collections one after the other, so build the interleaving from real BSON.
    const ser = (d: object) => Buffer.from(BSON.serialize(d));
    const docs = (name: string, n: number) => Array.from({ length: n }, (_, i) => ser({ _id: i, name }));
    const a = docs('a', 5);
    const b = docs('b', 3);
    const crc = (list: Buffer[]) => {
      const c = new Crc64Ecma();
      for (const d of list) c.update(d);
      const { high, low } = c.halves();
      return BSON.Long.fromBits(low, high);
    };
    const term = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const head = (collection: string) => ser({ db: 'x', collection, EOF: false, CRC: BSON.Long.ZERO });
    const eof = (collection: string, list: Buffer[]) => ser({ db: 'x', collection, EOF: true, CRC: crc(list) });
    const meta = (collection: string) => ser({ db: 'x', collection, metadata: '{"indexes":[]}', size: 0, type: 'collection' });
    const bytes = Buffer.concat([
      Buffer.from([0x6d, 0xe2, 0x99, 0x81]), ser({ concurrent_collections: 2, version: '0.1', server_version: '7.0', tool_version: 't' }),
      meta('a'), meta('b'), term,
      head('a'), ...a.slice(0, 3), term, head('b'), ...b.slice(0, 2), term, head('a'), ...a.slice(3), term,
      eof('a', a), term, head('b'), b[2]!, term, eof('b', b), term,
    ]);
    expect(parse(bytes, 3).namespaces).toMatchObject({ 'x.a': { documents: 5 }, 'x.b': { documents: 3 } });
    // A CRC over the documents in another order does not match.
    const swapped = Buffer.concat([bytes.subarray(0, bytes.length - eof('b', b).length - 4), eof('b', [b[1]!, b[0]!, b[2]!]), term]);
    expect(() => parse(swapped)).toThrow(/CRC-64 of x\.b/);
  });

  it('gives the same facts however the bytes are chunked (1, 7, 4096 bytes)', () => {
    const whole = parse(parallel);
    for (const chunk of [1, 7, 4096]) expect(parse(parallel, chunk)).toEqual(whole);
  });

  it('refuses the archive cut at any point', () => {
    const cuts = [0, 1, 4, 40, ...Array.from({ length: 60 }, (_, i) => Math.floor(((i + 1) * serial.length) / 61)), serial.length - 5, serial.length - 1];
    for (const cut of cuts) expect(() => parse(serial.subarray(0, cut)), `cut at ${cut}`).toThrow(/not whole/);
  });

  it('refuses a flipped byte in a document, garbage, and bytes after the end', () => {
    const flipped = Buffer.from(serial);
    flipped[serial.length - 300] ^= 1;
    expect(() => parse(flipped)).toThrow(/CRC-64 of arch\.\w+/);
    expect(() => parse(Buffer.from('{"not":"an archive"}'))).toThrow(/archive magic 6D E2 99 81/);
    expect(() => parse(Buffer.concat([serial, Buffer.from([1, 2, 3])]))).toThrow(/truncated|claims/);
  });

  it('reads just the prelude of a file: options and index specs', async () => {
    const prelude = await readArchivePrelude(path.join(dir, 'p1.archive'));
    expect(prelude.collections.map((c) => c.collection).sort()).toEqual(Object.keys(COUNTS).sort());
    expect(prelude.collections[0]!.indexes[0]).toMatchObject({ name: '_id_', key: { _id: 1 } });
    await expect(readArchivePrelude(__filename)).rejects.toThrow(/archive magic/);
  });

  it('CRC-64/XZ check value', () => {
    const c = new Crc64Ecma();
    c.update(Buffer.from('123456789'));
    expect(c.digestHex()).toBe('995dc9bbdf1939fa');
  });
});

describe('connection strings and tool arguments', () => {
  it('gives the tools an explicit authSource and no path database, keeping every option', () => {
    expect(toolUri(parseMongoUri('mongodb://u:p%40ss@h1:27017,h2:27018/tyk?replicaSet=rs0&tls=true'))).toBe(
      'mongodb://u:p%40ss@h1:27017,h2:27018/?replicaSet=rs0&tls=true&authSource=tyk',
    );
    expect(toolUri(parseMongoUri('mongodb://u:p@h/'))).toBe('mongodb://u:p@h/?authSource=admin');
    expect(toolUri(parseMongoUri('mongodb://u:p@h/db?authSource=other'))).toBe('mongodb://u:p@h/?authSource=other');
    expect(toolUri(parseMongoUri('mongodb://u@h/?authMechanism=MONGODB-X509'))).toBe('mongodb://u@h/?authMechanism=MONGODB-X509&authSource=%24external');
    expect(toolUri(parseMongoUri('mongodb+srv://cluster0.example.net/tyk'))).toBe('mongodb+srv://cluster0.example.net/');
  });

  it('shows connection strings without password or secret options', () => {
    const u = parseMongoUri('mongodb://tyk:s3cr%2Ft@db1,db2/tyk?authMechanismProperties=AWS_SESSION_TOKEN:abc&w=majority');
    expect(u.password).toBe('s3cr/t');
    expect(displayUri(u)).toBe('mongodb://tyk:[redacted]@db1,db2/tyk?authMechanismProperties=[redacted]&w=majority');
    expect(scrubMongoText('failed to connect to mongodb://tyk:s3cr%2Ft@db1/ (pw s3cr/t)', ['s3cr/t'])).toBe(
      'failed to connect to mongodb://[redacted]@db1/ (pw [redacted])',
    );
    expect(() => parseMongoUri('http://x')).toThrow(/mongodb:\/\//);
  });

  it('maps exclusions to mongodump flags', () => {
    expect(excludeArgs(['tyk_analytics', 'z_tyk_analyticz*'])).toEqual(['--excludeCollection=tyk_analytics', '--excludeCollectionsWithPrefix=z_tyk_analyticz']);
    expect(isExcluded('z_tyk_analyticz_5e9d', ['z_tyk_analyticz*'])).toBe(true);
    expect(isExcluded('tyk_analytics_users', ['tyk_analytics'])).toBe(false);
  });

  it('restores with mongorestore’s own index restore except on FerretDB', () => {
    expect(restoreArgs('/s/a', 'tyk_analytics', 'tyk_analytics', false)).toEqual(['--archive=/s/a', '--drop', '--nsInclude=tyk_analytics.*', '--stopOnError']);
    expect(restoreArgs('/s/a', 'tyk', 'tyk*new', true)).toEqual([
      '--archive=/s/a', '--drop', '--nsInclude=tyk.*', '--nsFrom=tyk.*', '--nsTo=tyk\\*new.*', '--stopOnError',
      '--noIndexRestore', '--numParallelCollections=1', '--numInsertionWorkersPerCollection=1',
    ]);
  });
});
