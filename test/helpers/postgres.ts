import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './net.js';

const execFileP = promisify(execFile);

/** Debian's PostgreSQL 15 server binaries (apt-get install postgresql-15). */
export const PG_BIN = process.env.TYKDR_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Clusters still running: stopped when the test process exits, even if a test forgot stop(). */
const running = new Set<string>();
process.once('exit', () => {
  for (const data of running) {
    try {
      execFileSync(...asPostgres(path.join(PG_BIN, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-s']), { stdio: 'ignore' });
    } catch {
      // already stopped
    }
  }
});

export interface PostgresServer {
  host: string;
  port: number;
  /** The superuser (scram password) created by initdb. */
  superuser: string;
  superPassword: string;
  /** The cluster's temp folder (data/, sockets/, server.log); removed by stop(). */
  dir: string;
  binDir: string;
  /** A connected client as the superuser (or `user`/`password`) on `database` (default "postgres"); the caller ends it. */
  client(database?: string, user?: string, password?: string): Promise<pg.Client>;
  /** Runs SQL as the superuser on a database and returns the rows. */
  query<T = Record<string, unknown>>(database: string, sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

/** argv that runs `cmd` as the `postgres` system user when we are root (PostgreSQL refuses to run as root). */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

/**
 * initdb's a throwaway PostgreSQL 15 cluster in a temp folder and starts it with pg_ctl on a free 127.0.0.1 port
 * (scram-sha-256 for TCP, unix socket in the temp folder). As root, initdb and the server run as the `postgres`
 * system user and the folder is chowned to it. Throws, naming what is missing, when the binaries or the user are absent.
 */
export async function startPostgres(opts: { superuser?: string; superPassword?: string } = {}): Promise<PostgresServer> {
  for (const tool of ['initdb', 'pg_ctl', 'postgres', 'pg_dump', 'pg_restore', 'pg_dumpall', 'psql']) {
    if (!existsSync(path.join(PG_BIN, tool))) {
      throw new Error(`${path.join(PG_BIN, tool)} is missing: apt-get install postgresql-15 (or set TYKDR_PG_BIN)`);
    }
  }
  const superuser = opts.superuser ?? 'postgres';
  const superPassword = opts.superPassword ?? 'super-secret-pw-0001';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tykdr-pg-'));
  const data = path.join(dir, 'data');
  const sockets = path.join(dir, 'sockets');
  await mkdir(sockets);
  const pwfile = path.join(dir, 'pwfile');
  await writeFile(pwfile, `${superPassword}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    let uid: number;
    let gid: number;
    try {
      uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    } catch {
      throw new Error('running as root, but there is no "postgres" system user to run PostgreSQL as (apt-get install postgresql-15 creates it)');
    }
    for (const p of [dir, sockets, pwfile]) await chown(p, uid, gid);
    await chmod(dir, 0o700);
  }
  const run = async (cmd: string, args: string[]) => {
    const [c, a] = asPostgres(path.join(PG_BIN, cmd), args);
    try {
      return await execFileP(c, a, { encoding: 'utf8' });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      const log = await readFile(path.join(dir, 'server.log'), 'utf8').catch(() => '');
      throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\n${log.slice(-3000)}`);
    }
  };
  await run('initdb', ['-D', data, '-U', superuser, `--pwfile=${pwfile}`, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50`;
    try {
      await run('pg_ctl', ['start', '-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-s', '-o', options]);
    } catch (err) {
      lastErr = err;
      continue;
    }
    running.add(data);
    const host = '127.0.0.1';
    const client = async (database = 'postgres', user = superuser, password = superPassword) => {
      const c = new pg.Client({ host, port, user, password, database, ssl: false });
      await c.connect();
      return c;
    };
    const query = async <T,>(database: string, sql: string, params?: unknown[]) => {
      const c = await client(database);
      try {
        return (await c.query(sql, params)).rows as T[];
      } finally {
        await c.end();
      }
    };
    return {
      host, port, superuser, superPassword, dir, binDir: PG_BIN, client, query,
      stop: async () => {
        running.delete(data);
        await run('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-s', '-w']).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw lastErr;
}

/** The owner role and password the Dashboard-like fixtures use (not a superuser). */
export const TYK_USER = 'tyk';
export const TYK_PASSWORD = 'tyk-pw-Xq7-0002';

/**
 * Creates role `tyk` (LOGIN, password) and database `db` owned by it, and seeds a Tyk Dashboard-like schema as `tyk`:
 * tyk_apis (JSONB), tyk_policies, tyk_organisations, tyk_analytics_users, portal_configurations, a sequence and a
 * view, plus analytics tables (tyk_analytics, tyk_analytics_20261120, tyk_aggregated) with rows. Returns the row
 * counts per table ("public.name").
 */
export async function seedTykDashboard(server: PostgresServer, db: string, opts: { apis?: number } = {}): Promise<Record<string, number>> {
  const exists = await server.query('postgres', 'SELECT 1 FROM pg_roles WHERE rolname = $1', [TYK_USER]);
  if (exists.length === 0) await server.query('postgres', `CREATE ROLE ${TYK_USER} LOGIN PASSWORD '${TYK_PASSWORD}'`);
  await server.query('postgres', `CREATE DATABASE ${db} OWNER ${TYK_USER}`);
  const c = await server.client(db, TYK_USER, TYK_PASSWORD);
  const apis = opts.apis ?? 120;
  try {
    await c.query(`
      CREATE TABLE tyk_organisations (id text PRIMARY KEY, owner_name text NOT NULL, cname text, created_at timestamptz DEFAULT now());
      CREATE TABLE tyk_apis (
        id bigserial PRIMARY KEY, api_id text NOT NULL UNIQUE, org_id text NOT NULL REFERENCES tyk_organisations(id),
        name text NOT NULL, api_definition jsonb NOT NULL, created_at timestamptz DEFAULT now());
      CREATE INDEX tyk_apis_org_idx ON tyk_apis (org_id);
      CREATE INDEX tyk_apis_def_gin ON tyk_apis USING gin (api_definition);
      CREATE TABLE tyk_policies (id text PRIMARY KEY, org_id text NOT NULL, name text, access_rights jsonb, rate int, per int);
      CREATE INDEX tyk_policies_org_idx ON tyk_policies (org_id);
      CREATE TABLE tyk_analytics_users (id serial PRIMARY KEY, email text NOT NULL, org_id text, password text, user_permissions jsonb);
      CREATE UNIQUE INDEX tyk_analytics_users_email_key ON tyk_analytics_users (lower(email));
      CREATE TABLE portal_configurations (id text PRIMARY KEY, org_id text, config jsonb);
      CREATE TABLE portal_developers (id text PRIMARY KEY, email text, keys jsonb);
      CREATE VIEW tyk_api_names AS SELECT api_id, name FROM tyk_apis;
      CREATE TABLE tyk_analytics (id bigserial PRIMARY KEY, api_id text, path text, response_code int, "timestamp" timestamptz DEFAULT now());
      CREATE INDEX tyk_analytics_ts_idx ON tyk_analytics ("timestamp");
      CREATE TABLE tyk_analytics_20261120 (LIKE tyk_analytics INCLUDING ALL);
      CREATE TABLE tyk_aggregated (id bigserial PRIMARY KEY, org_id text, counts jsonb);
    `);
    await c.query(`INSERT INTO tyk_organisations SELECT 'org' || i, 'Org ' || i, 'org' || i || '.example.com' FROM generate_series(1, 5) i`);
    await c.query(
      `INSERT INTO tyk_apis (api_id, org_id, name, api_definition)
       SELECT md5('api' || i), 'org' || (1 + i % 5), 'API ' || i,
              jsonb_build_object('name', 'API ' || i, 'proxy', jsonb_build_object('listen_path', '/api' || i || '/', 'target_url', 'http://upstream:8080/'),
                                 'version_data', jsonb_build_object('not_versioned', true), 'tags', jsonb_build_array('t' || (i % 7), 'é-ü-✓'))
       FROM generate_series(1, $1::int) i`,
      [apis],
    );
    await c.query(`INSERT INTO tyk_policies SELECT 'pol' || i, 'org' || (1 + i % 5), 'Policy ' || i, '{"a": {"versions": ["Default"]}}', 100, 60 FROM generate_series(1, 40) i`);
    await c.query(`INSERT INTO tyk_analytics_users (email, org_id, password, user_permissions) SELECT 'user' || i || '@example.com', 'org1', '$2a$10$hash' || i, '{"IsAdmin": "admin"}' FROM generate_series(1, 12) i`);
    await c.query(`INSERT INTO portal_configurations VALUES ('cfg1', 'org1', '{"signup_fields": [], "mail_options": {}}')`);
    await c.query(`INSERT INTO portal_developers SELECT 'dev' || i, 'dev' || i || '@example.com', '{}' FROM generate_series(1, 7) i`);
    await c.query(`INSERT INTO tyk_analytics (api_id, path, response_code) SELECT md5('api' || (i % 20)), '/p/' || i, 200 FROM generate_series(1, 3000) i`);
    await c.query(`INSERT INTO tyk_analytics_20261120 (api_id, path, response_code) SELECT 'x', '/q/' || i, 500 FROM generate_series(1, 500) i`);
    await c.query(`INSERT INTO tyk_aggregated (org_id, counts) SELECT 'org1', jsonb_build_object('hits', i) FROM generate_series(1, 200) i`);
    await c.query('ANALYZE');
  } finally {
    await c.end();
  }
  return tableCounts(server, db);
}

/** Exact row counts of every ordinary table of the user schemas, keyed "schema.table". */
export async function tableCounts(server: PostgresServer, db: string): Promise<Record<string, number>> {
  const tables = await server.query<{ s: string; t: string }>(
    db,
    `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2`,
  );
  const out: Record<string, number> = {};
  const c = await server.client(db);
  try {
    for (const { s, t } of tables) {
      const r = await c.query(`SELECT count(*)::bigint AS n FROM ${pg.escapeIdentifier(s)}.${pg.escapeIdentifier(t)}`);
      out[`${s}.${t}`] = Number(r.rows[0].n);
    }
  } finally {
    await c.end();
  }
  return out;
}

/** Every index as "schema.table: index" (sorted): what a restore must bring back. */
export async function indexList(server: PostgresServer, db: string): Promise<string[]> {
  const rows = await server.query<{ s: string; t: string; i: string }>(
    db,
    `SELECT schemaname AS s, tablename AS t, indexname AS i FROM pg_indexes
     WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3`,
  );
  return rows.map((r) => `${r.s}.${r.t}: ${r.i}`);
}

/** A deterministic digest of a table's contents (every row as JSON, ordered), to compare source and restore. */
export async function tableDigest(server: PostgresServer, db: string, table: string): Promise<string> {
  const rows = await server.query<{ d: string | null }>(
    db,
    `SELECT md5(string_agg(row_to_json(t)::text, E'\\n' ORDER BY row_to_json(t)::text)) AS d FROM ${table} t`,
  );
  return rows[0]?.d ?? 'empty';
}
