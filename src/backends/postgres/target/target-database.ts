import { connectPg, describeEndpoint, explainPgError, quoteIdent, type PgClient, type PgEndpoint } from '../connection.js';
import { serverVersion } from '../catalog.js';
import { majorLabel, majorOf } from '../versions.js';
import { TykdrError } from '../../../core/errors.js';

/** True when a connection failed because the database does not exist (SQLSTATE 3D000). */
export function isMissingDatabase(err: unknown): boolean {
  const cause = err instanceof TykdrError ? err.cause : err;
  return (cause as { code?: string } | undefined)?.code === '3D000';
}

/**
 * Connects to a database that always exists, for cluster-wide work (CREATE DATABASE, roles): "postgres", else
 * "template1", else the target database itself.
 */
export async function connectMaintenance(ep: PgEndpoint): Promise<{ db: PgClient; database: string }> {
  let first: unknown;
  for (const database of ['postgres', 'template1', ep.database]) {
    try {
      return { db: await connectPg(ep, database), database };
    } catch (err) {
      first ??= err;
      if (!isMissingDatabase(err) && !/permission denied|pg_hba/i.test((err as Error).message)) throw err;
    }
  }
  throw first;
}

/** Refuses (targetError) a target server older than the dump's source: a dump loads into the same or a newer major version. */
export async function requireServerAtLeast(db: PgClient, ep: PgEndpoint, source: { text: string; num: number }): Promise<{ text: string; num: number }> {
  const server = await serverVersion(db).catch((err: unknown) => {
    throw explainPgError(err, ep);
  });
  if (majorOf(server.num) < majorOf(source.num)) {
    throw new TykdrError(
      'targetError',
      `${ep.configPath}: ${describeEndpoint(ep)} runs PostgreSQL ${server.text}, older than the snapshot's source (PostgreSQL ${source.text}): a dump loads reliably only into the same or a newer major version`,
      { fix: `restore into PostgreSQL ${majorLabel(source.num)} or newer (set ${ep.configPath.replace(/\.restore\.target$/, '')}.restore.target)` },
    );
  }
  return server;
}

/**
 * Creates the target database (owned by the restore user), with the source's encoding when known
 * (TEMPLATE template0, so any encoding is allowed). A user without CREATEDB gets a targetError saying so.
 */
export async function createDatabase(admin: PgClient, ep: PgEndpoint, encoding: string | undefined): Promise<void> {
  const enc = encoding && /^[A-Za-z0-9_]+$/.test(encoding) ? ` TEMPLATE template0 ENCODING '${encoding}'` : '';
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(ep.database)}${enc}`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '42P04') return; // created meanwhile
    if (code === '42501') {
      throw new TykdrError('targetError', `${ep.configPath}: user "${ep.username}" may not create database "${ep.database}" on ${ep.host}:${ep.port}`, {
        fix: `create it first (CREATE DATABASE ${quoteIdent(ep.database)} OWNER ${quoteIdent(ep.username)}), or grant the user CREATEDB`,
        cause: err,
      });
    }
    throw new TykdrError('targetError', `${ep.configPath}: creating database "${ep.database}" on ${ep.host}:${ep.port} failed: ${(err as Error).message}`, {
      fix: 'create the database yourself (same encoding as the source) and restore again',
      cause: err,
    });
  }
}

/** Role names (of `names`) that do not exist on the target server. */
export async function missingRoles(db: PgClient, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const { rows } = await db.query<{ r: string }>('SELECT rolname AS r FROM pg_roles WHERE rolname = ANY($1::text[])', [names]);
  const have = new Set(rows.map((x) => x.r));
  return names.filter((r) => !have.has(r));
}

/**
 * Existing roles (of `names`) the connected user cannot give objects to: ALTER ... OWNER TO needs a superuser or
 * membership in the new owner role.
 */
export async function rolesNotActable(db: PgClient, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const { rows } = await db.query<{ r: string }>(
    `SELECT r FROM unnest($1::text[]) AS r
      WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AND NOT pg_has_role(current_user, r, 'MEMBER')`,
    [names],
  );
  return rows.map((x) => x.r);
}
