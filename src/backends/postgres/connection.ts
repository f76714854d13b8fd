import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { PostgresComponent } from '../../core/config/load.js';
import { badInput, TykdrError, type ErrorKind } from '../../core/errors.js';
import type { Secret } from '../../core/secret.js';

/** Where tykdr connects: the component's own server (backup), or its restore target. */
export interface PgEndpoint {
  host: string;
  port: number;
  database: string;
  username: string;
  password?: Secret;
  sslmode: PostgresComponent['sslmode'];
  sslrootcert?: string;
  /** Config path of these settings, for fixes: "components.pg" or "components.pg.restore.target". */
  configPath: string;
  /** Exit-code kind of connection failures: the backup's source, or the restore's target. */
  failure: Extract<ErrorKind, 'sourceUnreachable' | 'targetError'>;
}

/** The subset of a pg client tykdr calls (so a unit test can hand in a stand-in). */
export interface PgClient {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
  /** Drops the connection at once, without the goodbye end() waits for (a server that stopped answering). */
  destroy?(): void;
}

const CONNECT_TIMEOUT_MS = 10_000;
/** How long closing a connection may wait for the server before the socket is dropped. */
const END_WAIT_MS = 5_000;

function destroy(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
}

export function sourceEndpoint(c: PostgresComponent): PgEndpoint {
  return {
    host: c.host, port: c.port, database: c.database, username: c.username, password: c.password,
    sslmode: c.sslmode, sslrootcert: c.sslrootcert, configPath: `components.${c.name}`, failure: 'sourceUnreachable',
  };
}

/** The restore target: `restore.target` fields override the component's connection, field by field. */
export function targetEndpoint(c: PostgresComponent): PgEndpoint {
  const t = c.restore.target ?? {};
  const has = Object.values(t).some((v) => v !== undefined);
  return {
    host: t.host ?? c.host,
    port: t.port ?? c.port,
    database: t.database ?? c.database,
    username: t.username ?? c.username,
    password: t.password ?? c.password,
    sslmode: t.sslmode ?? c.sslmode,
    sslrootcert: t.sslrootcert ?? c.sslrootcert,
    configPath: has ? `components.${c.name}.restore.target` : `components.${c.name}`,
    failure: 'targetError',
  };
}

/** "PostgreSQL at 10.0.0.5:5432, database "tyk_analytics", user "tyk"": never the password. */
export function describeEndpoint(e: PgEndpoint, database = e.database): string {
  return `PostgreSQL at ${e.host}:${e.port}, database "${database}", user "${e.username}"`;
}

/**
 * Environment for a libpq child (pg_dump, pg_restore, psql): connection settings in PG* variables, so the password
 * is never in argv. Inherited PG* variables are dropped so a stray PGSERVICE or PGOPTIONS cannot redirect the tool.
 */
export function libpqEnv(e: PgEndpoint, database = e.database): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  Object.assign(env, {
    PGHOST: e.host,
    PGPORT: String(e.port),
    PGUSER: e.username,
    PGDATABASE: database,
    PGSSLMODE: e.sslmode,
    PGCONNECT_TIMEOUT: String(CONNECT_TIMEOUT_MS / 1000),
    PGAPPNAME: 'tykdr',
    // The password is the config's or none, as for the pg driver (which gets '' when none is set): no ~/.pgpass.
    PGPASSFILE: '/dev/null',
  });
  if (e.sslrootcert !== undefined) env.PGSSLROOTCERT = e.sslrootcert;
  if (e.password !== undefined) env.PGPASSWORD = e.password.reveal();
  return env;
}

/** A libpq connection string holding only the database name (tools take the rest from libpqEnv). */
export function dbnameConninfo(database: string): string {
  return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function sslAttempts(e: PgEndpoint): Array<false | ConnectionOptions> {
  let ca: Buffer | undefined;
  if (e.sslrootcert !== undefined && e.sslmode !== 'disable') {
    try {
      ca = readFileSync(e.sslrootcert);
    } catch (err) {
      throw badInput(`${e.configPath}.sslrootcert: cannot read ${e.sslrootcert}`, 'check the path', err);
    }
  }
  // libpq semantics: require verifies the CA only when a root certificate is given; verify-ca skips the host name.
  const noVerify: ConnectionOptions = { rejectUnauthorized: false };
  switch (e.sslmode) {
    case 'disable':
      return [false];
    case 'allow':
      return [false, noVerify];
    case 'prefer':
      return [noVerify, false];
    case 'require':
      return [ca ? { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined } : noVerify];
    case 'verify-ca':
      return [{ ca, rejectUnauthorized: true, checkServerIdentity: () => undefined }];
    case 'verify-full':
      return [{ ca, rejectUnauthorized: true, servername: e.host }];
  }
}

/**
 * Connects with the pg driver, following libpq's sslmode (prefer tries TLS, then plain). Failures are TykdrErrors
 * of the endpoint's kind naming host:port, database and user, with a fix; never the password.
 */
export async function connectPg(e: PgEndpoint, database = e.database): Promise<PgClient> {
  const attempts = sslAttempts(e);
  let lastErr: unknown;
  for (const [i, ssl] of attempts.entries()) {
    const client = new pg.Client({
      host: e.host,
      port: e.port,
      user: e.username,
      password: e.password?.reveal() ?? '',
      database,
      ssl,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'tykdr',
    });
    // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
    client.on('error', () => undefined);
    try {
      await client.connect();
      return {
        query: async <R,>(sql: string, params?: unknown[]) => ({ rows: (await client.query(sql, params)).rows as R[] }),
        // end() says goodbye and waits for the server; one that stopped answering would keep it (and the
        // process) waiting forever, so after END_WAIT_MS the connection is dropped instead.
        end: async () => {
          const drop = setTimeout(() => destroy(client), END_WAIT_MS);
          await client.end().catch(() => undefined);
          clearTimeout(drop);
        },
        destroy: () => destroy(client),
      };
    } catch (err) {
      lastErr = err;
      await client.end().catch(() => undefined);
      const msg = String((err as Error).message);
      const sslRefused = /does not support SSL|SSL.*(off|not|unsupported)|no pg_hba\.conf entry.*(SSL on|no encryption)/i.test(msg);
      if (!(sslRefused && i < attempts.length - 1)) break;
    }
  }
  throw explainPgError(lastErr, e, database);
}

/** Maps a driver or server error to a TykdrError of the endpoint's kind, naming where and how to fix it. */
export function explainPgError(err: unknown, e: PgEndpoint, database = e.database): TykdrError {
  if (err instanceof TykdrError) return err;
  const where = `${e.configPath}: ${describeEndpoint(e, database)}`;
  const msg = String((err as Error)?.message ?? err).split('\n')[0]!;
  const code = String((err as { code?: unknown })?.code ?? '');
  const make = (m: string, fix: string) => new TykdrError(e.failure, m, { fix, cause: err });
  const cfg = e.configPath;
  if (code === '28P01' || /password authentication failed|SASL|SCRAM/i.test(msg)) {
    return make(`${where}: password authentication failed`, `check ${cfg}.username and ${cfg}.password (use \${ENV_VAR} for the password)`);
  }
  if (code === '28000') {
    return make(`${where}: access refused (${msg})`, `allow this host and user in the server's pg_hba.conf, or check ${cfg}.username and sslmode`);
  }
  if (code === '3D000') {
    return make(`${where}: the database does not exist`, `check ${cfg}.database (psql -l lists the databases)`);
  }
  if (/does not support SSL/i.test(msg)) {
    return make(`${where}: the server does not accept TLS (sslmode ${e.sslmode})`, `set ${cfg}.sslmode to prefer or disable, or enable ssl on the server`);
  }
  if (/certificate|self.signed|UNABLE_TO_VERIFY|ERR_TLS|altnames/i.test(`${code} ${msg}`)) {
    return make(`${where}: TLS verification failed (${msg})`, `set ${cfg}.sslrootcert to the CA that signed the server certificate, or use sslmode require`);
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET'].includes(code) || /timeout|terminated unexpectedly/i.test(msg)) {
    return make(
      `${where}: unreachable (${code || msg})`,
      `check ${cfg}.host and ${cfg}.port, that PostgreSQL is running and listens there (listen_addresses, port), and that no firewall blocks it`,
    );
  }
  if (code === '42501') {
    return make(`${where}: permission denied (${msg})`, `grant the user the privileges tykdr needs (see ${cfg}.username)`);
  }
  return make(`${where}: ${msg}${code ? ` (SQLSTATE ${code})` : ''}`, `check ${cfg}`);
}

/** Double-quotes an SQL identifier. */
export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** "schema.table" as an SQL name, each part quoted. */
export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
