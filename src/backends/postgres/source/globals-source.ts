import type { PostgresComponent } from '../../../core/config/load.js';
import { integrityError, sourceUnreachable } from '../../../core/errors.js';
import type { Source, SourceArtifact } from '../../../core/interfaces/source.js';
import { serverVersion } from '../catalog.js';
import { connectPg, describeEndpoint, explainPgError, libpqEnv, sourceEndpoint, type PgClient, type PgEndpoint } from '../connection.js';
import { lastLines, spawnToolStream } from './tool-stream.js';
import { requireToolForServer, toolPath, toolVersion, type PgVersion } from '../versions.js';

const COMPLETE_MARK = '-- PostgreSQL database cluster dump complete';

/** Parses `CREATE ROLE name;` / `CREATE TABLESPACE name ...` lines of pg_dumpall output; names may be quoted. */
export function parseGlobalsLine(line: string): { role?: string; tablespace?: string } {
  const m = /^CREATE (ROLE|TABLESPACE) ("(?:[^"]|"")+"|[^\s;]+)/.exec(line);
  if (!m) return {};
  const name = m[2]!.startsWith('"') ? m[2]!.slice(1, -1).replace(/""/g, '"') : m[2]!;
  return m[1] === 'ROLE' ? { role: name } : { tablespace: name };
}

/**
 * Roles and tablespaces of the cluster (`pg_dumpall --globals-only`), a plain SQL artifact `<name>-globals` next to
 * the database dump: a restored database's owners and GRANTs need its roles, and role passwords live only here.
 * pg_dumpall reads role passwords from pg_authid, which only a superuser may read, so `check` refuses early
 * (exit 3) for any other user, saying so. The SQL is whole only when pg_dumpall exited 0 and wrote its closing line.
 */
export class PostgresGlobalsSource implements Source {
  readonly kind = 'postgres-globals';
  readonly format = 'sql';
  readonly component: string;
  readonly configName: string;
  private readonly ep: PgEndpoint;

  constructor(private readonly cfg: PostgresComponent) {
    this.component = `${cfg.name}-globals`;
    this.configName = cfg.name;
    this.ep = sourceEndpoint(cfg);
  }

  async check(signal?: AbortSignal): Promise<void> {
    const db = await connectPg(this.ep);
    try {
      await this.preflight(db, signal);
    } finally {
      await db.end();
    }
  }

  async open(signal?: AbortSignal): Promise<SourceArtifact> {
    const db = await connectPg(this.ep);
    let versions: { server: PgVersion; tool: PgVersion };
    try {
      versions = await this.preflight(db, signal);
    } finally {
      await db.end();
    }
    const roles: string[] = [];
    const tablespaces: string[] = [];
    let carry = '';
    const scan = (text: string) => {
      const lines = (carry + text).split('\n');
      carry = lines.pop()!;
      for (const l of lines) {
        const g = parseGlobalsLine(l);
        if (g.role !== undefined) roles.push(g.role);
        if (g.tablespace !== undefined) tablespaces.push(g.tablespace);
      }
    };
    const startedAt = new Date();
    const where = `components.${this.cfg.name}: pg_dumpall --globals-only of ${describeEndpoint(this.ep)}`;
    const stream = spawnToolStream({
      command: toolPath(this.cfg.binDir, 'pg_dumpall'),
      args: ['--globals-only', '--no-password', `--database=${this.ep.database}`],
      env: libpqEnv(this.ep),
      secrets: this.cfg.password ? [this.cfg.password.reveal()] : [],
      signal,
      inspect: (chunk) => scan(chunk.toString('utf8')),
      judge: (exit) => {
        const lines = lastLines(exit.stderr);
        if (/permission denied/i.test(exit.stderr)) {
          return sourceUnreachable(`${where} was refused: ${lines}`, superuserFix(this.cfg));
        }
        if (exit.signal) return integrityError(`${where} was killed by ${exit.signal} after ${exit.bytes} bytes: incomplete`);
        if (exit.code !== 0) return integrityError(`${where} exited with code ${exit.code}: ${lines || '(no message)'}`);
        if (/\berror:/i.test(exit.stderr)) return integrityError(`${where} reported errors although it exited 0: ${lines}`);
        if (exit.bytes === 0) return integrityError(`${where} exited 0 but wrote nothing`, `check that ${toolPath(this.cfg.binDir, 'pg_dumpall')} is the real pg_dumpall`);
        if (!exit.tail.toString('utf8').includes(COMPLETE_MARK)) {
          return integrityError(`${where} ended without its "${COMPLETE_MARK.slice(3)}" line: the SQL is incomplete`);
        }
        return null;
      },
    });
    return {
      stream,
      format: this.format,
      consistentAt: startedAt,
      finish: async () => {
        scan('\n');
        return {
          source: {
            address: `${this.ep.host}:${this.ep.port}`,
            user: this.ep.username,
            server_version: versions.server.text,
            server_version_num: versions.server.num,
            pg_dumpall_version: versions.tool.text,
            roles,
            role_count: roles.length,
            tablespaces,
          },
        };
      },
    };
  }

  private async preflight(db: PgClient, signal?: AbortSignal): Promise<{ server: PgVersion; tool: PgVersion }> {
    let server: PgVersion;
    let superuser: boolean;
    try {
      server = await serverVersion(db);
      const { rows } = await db.query<{ s: boolean }>('SELECT rolsuper AS s FROM pg_roles WHERE rolname = current_user');
      superuser = rows[0]?.s === true;
    } catch (err) {
      throw explainPgError(err, this.ep);
    }
    const configPath = `components.${this.cfg.name}`;
    const tool = await toolVersion({ binDir: this.cfg.binDir, tool: 'pg_dumpall', configPath, kind: 'badInput', wantMajor: server.num, signal });
    requireToolForServer('pg_dumpall', tool, server, configPath);
    if (!superuser) {
      throw sourceUnreachable(
        `${configPath}: globals: true needs a superuser, and user "${this.ep.username}" is not one: pg_dumpall --globals-only reads role passwords from pg_authid, which only superusers may read`,
        superuserFix(this.cfg),
      );
    }
    return { server, tool };
  }
}

function superuserFix(c: PostgresComponent): string {
  return `back up as a superuser (components.${c.name}.username), or set components.${c.name}.globals: false and recreate roles by hand on restore`;
}
