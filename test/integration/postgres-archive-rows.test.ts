import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect(await readFile(piped)).toEqual(bytes);

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
    expect(await readFile(file)).toEqual(piped);
  });
});
