import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDatabaseCounts } from '../../src/backends/postgres/target/postgres-checks.js';
import { insertStats } from '../../src/backends/postgres/catalog.js';
import type { DumpFacts } from '../../src/backends/postgres/target/dump-facts.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

/**
 * database-counts takes a table's count from PostgreSQL's statistics only when they prove it (a table created since
 * `before`, exactly the expected rows inserted, all live, none deleted); everything else is counted with count(*).
 * Rows are written by sessions named as pg_restore's are (application_name tykdr), ended before the check, as
 * pg_restore's are once it has exited: the check waits for every other session to leave, which is when their
 * statistics are in.
 */
let server: PostgresServer;
let checker: pg.Client;
const DB = 'counts';

const connect = async (application_name: string) => {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: server.superuser, password: server.superPassword, database: DB, application_name });
  await c.connect();
  return c;
};

const session = async (sql: string) => {
  const c = await connect('tykdr');
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
};

const facts = (tables: Record<string, number>): DumpFacts => ({
  address: 'source:5432', database: DB, server_version: '15', server_version_num: 150000, pg_dump_version: '15',
  tables, excluded_tables: [], partitioned_tables: [], indexes: {}, roles: [],
});

const check = (tables: Record<string, number>, before?: Map<string, { oid: string }>) =>
  checkDatabaseCounts({ db: checker, component: 'pg', facts: facts(tables), ...(before ? { before } : {}) });

const row = (r: Awaited<ReturnType<typeof check>>, table: string) => (r.evidence as { tables: Array<Record<string, unknown>> }).tables.find((t) => t.table === table);

beforeAll(async () => {
  server = await startPostgres();
  await server.query('postgres', `CREATE DATABASE ${DB}`);
  checker = await server.client(DB);
});

afterAll(async () => {
  await checker?.end();
  await server?.stop();
});

describe('database-counts from the statistics', () => {
  it('a table created since `before` and filled by a session that has ended is counted from its statistics', async () => {
    const before = (await insertStats(checker))!;
    await session('CREATE TABLE filled (id int); INSERT INTO filled SELECT g FROM generate_series(1, 500) g');
    const r = await check({ 'public.filled': 500 }, before);
    expect(r.status, r.detail).toBe('passed');
    expect(row(r, 'public.filled')).toMatchObject({ expected: 500, actual: 500, status: 'ok', counted_by: 'statistics' });
    expect(r.detail).toContain('1 of them created by this restore, counted by the server\'s statistics');
    // Without `before` (or with the table already in it) it is scanned.
    expect(row(await check({ 'public.filled': 500 }), 'public.filled')).toMatchObject({ actual: 500, counted_by: 'count' });
    expect(row(await check({ 'public.filled': 500 }, (await insertStats(checker))!), 'public.filled')).toMatchObject({ actual: 500, counted_by: 'count' });
  });

  it('a wrong expectation is never "proven": count(*) finds the difference', async () => {
    const r = await check({ 'public.filled': 501 }, new Map());
    expect(r.status).toBe('failed');
    expect(row(r, 'public.filled')).toMatchObject({ expected: 501, actual: 500, status: 'differs', counted_by: 'count' });
  });

  it('deleted rows, rolled-back inserts and a truncation send the table to count(*)', async () => {
    const before = (await insertStats(checker))!;
    await session('CREATE TABLE deleted (id int); INSERT INTO deleted SELECT g FROM generate_series(1, 100) g; DELETE FROM deleted WHERE id <= 10');
    await session('CREATE TABLE rolled (id int); INSERT INTO rolled SELECT g FROM generate_series(1, 100) g');
    await session('BEGIN; INSERT INTO rolled SELECT g FROM generate_series(1, 5) g; ROLLBACK');
    await session('CREATE TABLE truncated (id int); INSERT INTO truncated SELECT g FROM generate_series(1, 100) g');
    await session('TRUNCATE truncated');
    // 100 rows expected in each: only count(*) tells what is there.
    const r = await check({ 'public.deleted': 100, 'public.rolled': 100, 'public.truncated': 100 }, before);
    expect(row(r, 'public.deleted')).toMatchObject({ actual: 90, status: 'differs', counted_by: 'count' });
    expect(row(r, 'public.rolled')).toMatchObject({ actual: 100, status: 'ok', counted_by: 'count' });
    expect(row(r, 'public.truncated')).toMatchObject({ actual: 0, status: 'differs', counted_by: 'count' });
    expect(r.status).toBe('failed');
  });

  it('an empty table is counted: "nothing inserted" proves nothing', async () => {
    const before = (await insertStats(checker))!;
    await session('CREATE TABLE empty (id int)');
    expect(row(await check({ 'public.empty': 0 }, before), 'public.empty')).toMatchObject({ actual: 0, status: 'ok', counted_by: 'count' });
  });

  it('while another session is connected (a Dashboard), every table is counted: its delete may not be in the statistics yet', async () => {
    const before = (await insertStats(checker))!;
    await session('CREATE TABLE watched (id int); INSERT INTO watched SELECT g FROM generate_series(1, 50) g');
    const dashboard = await connect('dashboard');
    try {
      // Its first statement flushes its statistics; the delete right after stays in the session (the next flush is
      // at least a second later, and an idle session's ten).
      await dashboard.query('SELECT 1');
      await dashboard.query('DELETE FROM watched WHERE id <= 5');
      const r = await check({ 'public.watched': 50 }, before);
      expect(row(r, 'public.watched')).toMatchObject({ expected: 50, actual: 45, status: 'differs', counted_by: 'count' });
      expect(r.status).toBe('failed');
      // The same seen by a checker that is not a superuser: it may not see the superuser's session's details, and
      // counts it all the same.
      await server.query(DB, `CREATE ROLE plain LOGIN PASSWORD 'plain-pw-0001'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO plain`);
      const plain = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'plain', password: 'plain-pw-0001', database: DB });
      await plain.connect();
      try {
        const seen = await plain.query<{ t: string | null }>(`SELECT backend_type AS t FROM pg_stat_activity WHERE application_name = 'dashboard'`);
        expect(seen.rows).toEqual([{ t: null }]);
        const p = await checkDatabaseCounts({ db: plain, component: 'pg', facts: facts({ 'public.watched': 50 }), before });
        expect(row(p, 'public.watched')).toMatchObject({ actual: 45, status: 'differs', counted_by: 'count' });
      } finally {
        await plain.end();
      }
    } finally {
      await dashboard.end();
    }
  });

  it('a session of pg_restore still ending is waited for, up to a second, then count(*) decides', async () => {
    const before = (await insertStats(checker))!;
    const open = await connect('tykdr');
    try {
      await open.query('CREATE TABLE pending (id int); INSERT INTO pending SELECT g FROM generate_series(1, 50) g');
      const started = Date.now();
      const r = await check({ 'public.pending': 50 }, before);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(r.status, r.detail).toBe('passed');
      expect(row(r, 'public.pending')).toMatchObject({ actual: 50, status: 'ok', counted_by: 'count' });
    } finally {
      await open.end();
    }
  });
});
