import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveRechunker } from '../../src/backends/postgres/archive-rechunk.js';
import { ArchiveRowCounter, parseToc, writeDataOffsets } from '../../src/backends/postgres/archive-rows.js';
import { startPostgres, tableCounts, type PostgresServer } from '../helpers/postgres.js';

const run = promisify(execFile);
let pg: PostgresServer;
const DB = 'rows';

beforeAll(async () => {
  pg = await startPostgres();
  await pg.query('postgres', `CREATE DATABASE ${DB}`);
  await pg.query(
    DB,
    `CREATE TABLE plain (id int, note text);
     INSERT INTO plain SELECT i, 'row ' || i FROM generate_series(1, 50000) i;
     CREATE TABLE tricky (id int, body text, raw bytea, doc jsonb);
     INSERT INTO tricky SELECT i, E'line one\\nline two\\r\\n\\ttab \\\\ back' || i, decode('0a0d000a', 'hex'), jsonb_build_object('k', E'a\\nb')
       FROM generate_series(1, 777) i;
     INSERT INTO tricky VALUES (0, NULL, NULL, NULL), (-1, '', '', '{}');
     CREATE TABLE empty (id int);
     CREATE SCHEMA "Odd Schema"; CREATE TABLE "Odd Schema"."Mixed Case" (v text);
     INSERT INTO "Odd Schema"."Mixed Case" VALUES (E'\\n'), ('\\.'), ('.');
     CREATE TABLE parent (id int, part int) PARTITION BY LIST (part);
     CREATE TABLE parent_a PARTITION OF parent FOR VALUES IN (1);
     CREATE TABLE parent_b PARTITION OF parent FOR VALUES IN (2);
     INSERT INTO parent SELECT i, 1 + i % 2 FROM generate_series(1, 1001) i;
     CREATE TABLE wide (id int, body text);
     INSERT INTO wide VALUES (1, 'short'), (2, repeat('w', 1200000)), (3, 'after the wide row'), (4, repeat('m', 200000)), (5, 'x');
     SELECT lo_from_bytea(0, decode(repeat('0a', 5000), 'hex'));`,
  );
}, 120_000);

afterAll(async () => {
  await pg?.stop();
});

async function dump(file: string, extra: string[]): Promise<Buffer> {
  const out = path.join(pg.dir, file);
  await run(path.join(pg.binDir, 'pg_dump'), ['--format=custom', ...extra, `--file=${out}`, '-h', pg.host, '-p', String(pg.port), '-U', pg.superuser, DB], {
    env: { ...process.env, PGPASSWORD: pg.superPassword },
  });
  return readFile(out);
}

function count(archive: Buffer, chunk: number): Map<string, number> | null {
  const c = new ArchiveRowCounter();
  for (let i = 0; i < archive.length; i += chunk) c.push(archive.subarray(i, i + chunk));
  return c.finish();
}

describe('ArchiveRowCounter: rows of a pg_dump -Fc -Z0 archive, as it streams', () => {
  it('equals count(*) of every table, whatever the chunking (escaped newlines, NULLs, empty tables, partitions, large objects)', async () => {
    const archive = await dump('z0.dump', ['--compress=0']);
    const expected = await tableCounts(pg, DB);
    for (const chunk of [1, 7, 4096, 65536, archive.length]) {
      const got = count(archive, chunk);
      expect(got, `chunk ${chunk}`).not.toBeNull();
      expect(Object.fromEntries(got!), `chunk ${chunk}`).toEqual(expected);
    }
    expect(expected['public.plain']).toBe(50000);
    expect(expected['public.tricky']).toBe(779);
    expect(expected['public.empty']).toBe(0);
    expect(expected['public.wide']).toBe(5);
  });

  it('tables whose data pg_dump left out are absent, not zero', async () => {
    const archive = await dump('excluded.dump', ['--compress=0', '--exclude-table-data=public.plain']);
    const got = count(archive, 65536)!;
    expect(got.has('public.plain')).toBe(false);
    expect(got.get('public.tricky')).toBe(779);
  });

  it('gives up (null) on what it cannot follow: compressed data, a truncated or foreign stream', async () => {
    expect(count(await dump('z6.dump', ['--compress=6']), 65536)).toBeNull();
    const archive = await dump('z0b.dump', ['--compress=0']);
    expect(count(archive.subarray(0, archive.length - 3), 65536)).toBeNull();
    expect(count(archive.subarray(0, 200), 65536)).toBeNull();
    expect(count(Buffer.from('-- plain SQL dump\nCREATE TABLE x (id int);\n'), 16)).toBeNull();
  });
});

/** The data offsets a table of contents holds, by dump id (flag 2: set). */
function tocOffsets(archive: Buffer): Record<string, number> {
  const toc = parseToc(archive);
  const out: Record<string, number> = {};
  for (const e of toc.entries) {
    if (e.flag !== 2) continue;
    let v = 0;
    for (let i = toc.offSize; i >= 1; i--) v = v * 256 + archive[e.offsetAt + i]!;
    out[String(e.dumpId)] = v;
  }
  return out;
}

describe('data offsets: a streamed archive made seekable for pg_restore --jobs', () => {
  it('the offsets found while streaming are those pg_dump writes to a file; written in, pg_restore --jobs 2 restores every row', async () => {
    const seekable = await dump('seekable.dump', ['--compress=0']);
    const piped = path.join(pg.dir, 'piped.dump');
    await run('bash', ['-c', `'${path.join(pg.binDir, 'pg_dump')}' --format=custom --compress=0 -h ${pg.host} -p ${pg.port} -U ${pg.superuser} ${DB} | cat > '${piped}'`], {
      env: { ...process.env, PGPASSWORD: pg.superPassword },
    });
    const c = new ArchiveRowCounter();
    const bytes = await readFile(piped);
    for (let i = 0; i < bytes.length; i += 65536) c.push(bytes.subarray(i, i + 65536));
    const offsets = c.dataOffsets()!;
    expect(Object.keys(tocOffsets(bytes))).toEqual([]); // a pipe: no offsets
    expect(offsets).toEqual(tocOffsets(seekable));
    expect(Object.keys(offsets).length).toBeGreaterThanOrEqual(7);

    // A wrong offset (one byte off) changes nothing.
    const [first] = Object.keys(offsets);
    expect(await writeDataOffsets(piped, { ...offsets, [first!]: offsets[first!]! + 1 })).toBe(0);
    expect((await readFile(piped)).equals(bytes)).toBe(true);

    expect(await writeDataOffsets(piped, offsets)).toBe(Object.keys(offsets).length);
    expect(tocOffsets(await readFile(piped))).toEqual(offsets);
    expect(await writeDataOffsets(piped, offsets)).toBe(0); // already set

    await pg.query('postgres', 'CREATE DATABASE rows_back');
    await run(path.join(pg.binDir, 'pg_restore'), ['--jobs=2', '-h', pg.host, '-p', String(pg.port), '-U', pg.superuser, '-d', 'rows_back', piped], {
      env: { ...process.env, PGPASSWORD: pg.superPassword },
    });
    expect(await tableCounts(pg, 'rows_back')).toEqual(await tableCounts(pg, DB));
  });

  it('leaves an archive alone when an entry without an offset has none in the map', async () => {
    const file = path.join(pg.dir, 'partial.dump');
    const archive = await dump('partial-src.dump', ['--compress=0']);
    // Turn the file's offsets back into "not set" (flag 1), as a pipe leaves them.
    const toc = parseToc(archive);
    const piped = Buffer.from(archive);
    for (const e of toc.entries) if (e.flag === 2) piped.fill(0, e.offsetAt, e.offsetAt + 1 + toc.offSize).writeUInt8(1, e.offsetAt);
    await writeFile(file, piped);
    const offsets = tocOffsets(archive);
    const [drop] = Object.keys(offsets);
    delete offsets[drop!];
    expect(await writeDataOffsets(file, offsets)).toBe(0);
    expect((await readFile(file)).equals(piped)).toBe(true);
  });
});

/** The archive through an ArchiveRechunker, fed in chunks of `size` bytes (or the sizes `size` returns in turn). */
async function rechunk(archive: Buffer, size: number | (() => number)): Promise<{ out: Buffer; r: ArchiveRechunker }> {
  const r = new ArchiveRechunker();
  const parts: Buffer[] = [];
  const next = typeof size === 'number' ? () => size : size;
  await pipeline(
    Readable.from((function* () {
      for (let i = 0; i < archive.length; ) {
        const n = Math.max(1, next());
        yield archive.subarray(i, i + n);
        i += n;
      }
    })()),
    r,
    new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }),
  );
  return { out: Buffer.concat(parts), r };
}

/** The SQL script pg_restore prints from an archive file (or, `piped`, from the file through a pipe). */
async function scriptOf(file: string, piped = false): Promise<string> {
  const bin = path.join(pg.binDir, 'pg_restore');
  const { stdout } = piped
    ? await run('bash', ['-c', `set -o pipefail; cat '${file}' | '${bin}' -f -`], { maxBuffer: 64 << 20 })
    : await run(bin, ['-f', '-', file], { maxBuffer: 64 << 20 });
  // \restrict and \unrestrict carry a random key each run (PostgreSQL 15.14 on).
  return stdout.split('\n').filter((l) => !/^\\(un)?restrict /.test(l)).join('\n');
}

function rowCounts(archive: Buffer): Record<string, number> {
  const c = new ArchiveRowCounter();
  for (let i = 0; i < archive.length; i += 65536) c.push(archive.subarray(i, i + 65536));
  return Object.fromEntries(c.finish() ?? []);
}

describe('ArchiveRechunker: the row chunks of a -Z0 archive merged for pg_restore', () => {
  let archive: Buffer;
  let script: string;

  beforeAll(async () => {
    // Written to a file, so its table of contents holds data offsets, which the merge must mark "not set".
    archive = await dump('rechunk-src.dump', ['--compress=0']);
    script = await scriptOf(path.join(pg.dir, 'rechunk-src.dump'));
  });

  it('pg_restore reads the same SQL from it (every row, byte for byte, in order), from a file and from a pipe, whatever the input chunking', async () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), 1 + (seed % 70000));
    const expectedRows = rowCounts(archive);
    expect(expectedRows['public.wide']).toBe(5);
    for (const [label, size] of [['5 B', 5], ['4 KiB', 4096], ['64 KiB', 65536], ['random', random], ['whole', archive.length]] as const) {
      const { out, r } = await rechunk(archive, size);
      expect(r.passedThrough, label).toBeNull();
      // Rows are merged within an input chunk (real ones are 64 KiB to 8 MiB): 5-byte inputs hold no whole row.
      if (size !== 5) expect(r.chunksOut, label).toBeLessThan(r.chunksIn / 10);
      else expect(r.chunksOut, label).toBeLessThanOrEqual(r.chunksIn);
      expect(r.offsetsCleared, label).toBeGreaterThanOrEqual(8);
      expect(tocOffsets(out), label).toEqual({});
      expect(out.length, label).toBeLessThan(archive.length);
      // Still an archive the row counter follows, with the same rows.
      expect(rowCounts(out), label).toEqual(expectedRows);
      const file = path.join(pg.dir, `rechunked-${label.replace(/\W/g, '')}.dump`);
      await writeFile(file, out);
      expect(await scriptOf(file), label).toBe(script);
      if (label === 'random') expect(await scriptOf(file, true), `${label}, piped`).toBe(script);
    }
  }, 120_000);

  it('restored through a pipe, every table holds the same rows as the source, rows over 64 KiB and 1 MiB and the large object included', async () => {
    const { out } = await rechunk(archive, 1 << 20);
    const file = path.join(pg.dir, 'rechunked-restore.dump');
    await writeFile(file, out);
    await pg.query('postgres', 'CREATE DATABASE rows_merged');
    await run('bash', ['-c', `set -o pipefail; cat '${file}' | '${path.join(pg.binDir, 'pg_restore')}' -h ${pg.host} -p ${pg.port} -U ${pg.superuser} -d rows_merged`], {
      env: { ...process.env, PGPASSWORD: pg.superPassword },
    });
    expect(await tableCounts(pg, 'rows_merged')).toEqual(await tableCounts(pg, DB));
    const digest = `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS d FROM (SELECT * FROM tricky UNION ALL SELECT id, body, NULL, NULL FROM wide) t`;
    expect(await pg.query('rows_merged', digest)).toEqual(await pg.query(DB, digest));
    const lo = `SELECT md5(string_agg(lo_get(oid), ''::bytea ORDER BY oid)) AS d FROM pg_largeobject_metadata`;
    expect(await pg.query('rows_merged', lo)).toEqual(await pg.query(DB, lo));
  });

  it('knows where each block of its output starts: written into the merged file, pg_restore --jobs 2 seeks and restores every row', async () => {
    const { out, r } = await rechunk(archive, 65536);
    const offsets = r.dataOffsets()!;
    // The same blocks as the archive's own offsets name (pg_dump wrote it to a file), each now at its merged place.
    expect(Object.keys(offsets).sort()).toEqual(Object.keys(tocOffsets(archive)).sort());
    const file = path.join(pg.dir, 'rechunked-jobs.dump');
    await writeFile(file, out);
    // writeDataOffsets checks each offset against the block header there before it writes any.
    expect(await writeDataOffsets(file, offsets)).toBe(Object.keys(offsets).length);
    expect(tocOffsets(await readFile(file))).toEqual(offsets);
    expect(await scriptOf(file)).toBe(script);
    await pg.query('postgres', 'CREATE DATABASE rows_jobs');
    await run(path.join(pg.binDir, 'pg_restore'), ['--jobs=2', '-h', pg.host, '-p', String(pg.port), '-U', pg.superuser, '-d', 'rows_jobs', file], {
      env: { ...process.env, PGPASSWORD: pg.superPassword },
    });
    expect(await tableCounts(pg, 'rows_jobs')).toEqual(await tableCounts(pg, DB));
    // Passed through, the output keeps the input's offsets: none are offered.
    expect((await rechunk(await dump('rechunk-z6b.dump', ['--compress=6']), 4096)).r.dataOffsets()).toBeNull();
  });

  it('passes on unchanged what it cannot follow: compressed data, a foreign stream, an archive cut inside its table of contents', async () => {
    const z6 = await dump('rechunk-z6.dump', ['--compress=6']);
    for (const [label, input] of [['compressed', z6], ['plain SQL', Buffer.from('-- plain SQL dump\nCREATE TABLE x (id int);\n')], ['cut head', archive.subarray(0, 200)]] as const) {
      const { out, r } = await rechunk(input, 4096);
      expect(out.equals(input), label).toBe(true);
      expect(r.passedThrough, label).not.toBeNull();
    }
    expect((await rechunk(z6, 4096)).r.passedThrough).toBe('compressed data');
  });

  it('fails the stream, instead of ending it short, when the archive ends inside a data block', async () => {
    await expect(rechunk(archive.subarray(0, archive.length - 3), 65536)).rejects.toThrow(/ends inside/);
    const toc = parseToc(archive);
    for (const size of [4096, 1 << 20]) await expect(rechunk(archive.subarray(0, toc.length + 1000), size), `${size}`).rejects.toThrow(/ends inside/);
  });
});
