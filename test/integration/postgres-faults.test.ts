import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { seedTykDashboard, startPostgres, TYK_PASSWORD, TYK_USER, type PostgresServer } from '../helpers/postgres.js';
import { fingerprintTree, makeWorkspace, type Workspace } from '../helpers/workspace.js';

const DB = 'tyk_analytics';
let pg: PostgresServer;
let ws: Workspace;
let before: Record<string, string>;
let goodSnapshot: string;

const component = (o: { port?: number; database?: string; binDir?: string; extra?: string } = {}) => `  pg:
    kind: postgres
    host: 127.0.0.1
    port: ${o.port ?? pg.port}
    database: ${o.database ?? DB}
    username: ${TYK_USER}
    password: \${PG_PASSWORD}
    binDir: ${o.binDir ?? pg.binDir}
${o.extra ?? ''}`;

const config = (comp: string) => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
${comp}
restore: { reportDir: ./reports }
`;

/** A binDir whose pg_dump is `body` (a bash script; $REAL is the real pg_dump); the other tools are the real ones. */
async function fakeBinDir(name: string, body: string): Promise<string> {
  const dir = path.join(ws.dir, name);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'pg_dump');
  await writeFile(file, `#!/bin/bash\nREAL='${path.join(pg.binDir, 'pg_dump')}'\n${body}\n`);
  await chmod(file, 0o755);
  return dir;
}

/** Runs a backup that must fail, and proves it left no snapshot behind and never printed a password. */
async function expectBackupFailure(file: string, code: number, pattern: RegExp, env: NodeJS.ProcessEnv = { PG_PASSWORD: TYK_PASSWORD }) {
  const res = await runCli(['backup', '-c', file], { env });
  const out = res.stdout + res.stderr;
  expect(res.code, out).toBe(code);
  expect(res.stderr).toMatch(pattern);
  expect(res.stderr).toMatch(/^Fix: /m);
  expect(res.stderr).not.toMatch(/\n\s+at /);
  for (const secret of Object.values(env)) expect(out).not.toContain(secret);
  expect(await fingerprintTree(ws.storeDir)).toEqual(before);
  return res;
}

beforeAll(async () => {
  [pg, ws] = await Promise.all([startPostgres(), makeWorkspace()]);
  await seedTykDashboard(pg, DB, { apis: 400 });
  const good = await ws.writeConfig('good.yaml', config(component()));
  const res = await runCli(['backup', '-c', good, '--json'], { env: { PG_PASSWORD: TYK_PASSWORD } });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  goodSnapshot = JSON.parse(res.stdout).id;
  before = await fingerprintTree(ws.storeDir);
});

afterAll(async () => {
  await Promise.all([pg?.stop(), ws?.cleanup()]);
});

describe('PostgreSQL backups that must fail, leaving no snapshot', () => {
  it('wrong password: exit 3, names host:port, database and user, never the password', async () => {
    const f = await ws.writeConfig('wrongpw.yaml', config(component()));
    await expectBackupFailure(f, 3, new RegExp(`components\\.pg: PostgreSQL at 127\\.0\\.0\\.1:${pg.port}, database "${DB}", user "${TYK_USER}": password authentication failed`), {
      PG_PASSWORD: 'not-the-password-77',
    });
  });

  it('nothing listening on the port: exit 3, says unreachable and how to fix it', async () => {
    const port = await freePort();
    const f = await ws.writeConfig('noport.yaml', config(component({ port })));
    const res = await expectBackupFailure(f, 3, new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port}.*unreachable \\(ECONNREFUSED\\)`));
    expect(res.stderr).toMatch(/Fix: check components\.pg\.host and components\.pg\.port/);
  });

  it('unknown host: exit 3', async () => {
    const f = await ws.writeConfig('nohost.yaml', config(component().replace('host: 127.0.0.1', 'host: no-such-host.invalid')));
    await expectBackupFailure(f, 3, /PostgreSQL at no-such-host\.invalid:\d+.*unreachable/);
  });

  it('unknown database: exit 3, says so', async () => {
    const f = await ws.writeConfig('nodb.yaml', config(component({ database: 'no_such_db' })));
    await expectBackupFailure(f, 3, /database "no_such_db".*the database does not exist/);
  });

  it('pg_dump older than the server: exit 2, names both versions and the fix', async () => {
    const bin = await fakeBinDir('old', `if [ "$1" = --version ]; then echo 'pg_dump (PostgreSQL) 11.0'; exit 0; fi\nexec "$REAL" "$@"`);
    const f = await ws.writeConfig('old.yaml', config(component({ binDir: bin })));
    const res = await expectBackupFailure(f, 2, /pg_dump 11\.0 cannot dump PostgreSQL 15\.\d+: install postgresql-client-15 or set components\.pg\.binDir/);
    expect(res.stderr).toContain('components.pg');
  });

  it('pg_dump killed mid-dump: exit 5, names the component, no manifest', async () => {
    const bin = await fakeBinDir('killed', `if [ "$1" = --version ]; then exec "$REAL" --version; fi\n"$REAL" "$@" | head -c 3000\nkill -KILL $$`);
    const f = await ws.writeConfig('killed.yaml', config(component({ binDir: bin })));
    await expectBackupFailure(f, 5, /components\.pg: pg_dump of PostgreSQL at .* was killed by SIGKILL after 3000 bytes: the dump is incomplete/);
  });

  it('pg_dump exiting 1 after writing part of the dump: exit 5 with its last stderr line', async () => {
    const bin = await fakeBinDir('exit1', `if [ "$1" = --version ]; then exec "$REAL" --version; fi\n"$REAL" "$@" | head -c 2000\necho 'pg_dump: error: Dumping the contents of table "tyk_apis" failed: PQgetResult() failed.' >&2\nexit 1`);
    const f = await ws.writeConfig('exit1.yaml', config(component({ binDir: bin })));
    await expectBackupFailure(f, 5, /exited with code 1 after 2000 bytes: .*Dumping the contents of table "tyk_apis" failed/);
  });

  it('a dump tool that prints nothing and exits 0: never a complete snapshot', async () => {
    const bin = await fakeBinDir('silent', `if [ "$1" = --version ]; then exec "$REAL" --version; fi\nexit 0`);
    const f = await ws.writeConfig('silent.yaml', config(component({ binDir: bin })));
    await expectBackupFailure(f, 5, /exited 0 but wrote nothing/);
  });

  it('a dump tool that writes something that is not an archive: exit 5', async () => {
    const bin = await fakeBinDir('garbage', `if [ "$1" = --version ]; then exec "$REAL" --version; fi\necho 'hello, not a dump'`);
    const f = await ws.writeConfig('garbage.yaml', config(component({ binDir: bin })));
    await expectBackupFailure(f, 5, /not a custom-format archive/);
  });

  it('no pg_dump in binDir: exit 2, says where it looked', async () => {
    const f = await ws.writeConfig('nobin.yaml', config(component({ binDir: path.join(ws.dir, 'empty-bin') })));
    await expectBackupFailure(f, 2, /pg_dump was not found in components\.pg\.binDir/);
  });

  it('globals: true as a non-superuser: exit 3, explains pg_authid and the fix', async () => {
    const f = await ws.writeConfig('globals-nosuper.yaml', config(component({ extra: '    globals: true\n' })));
    const res = await expectBackupFailure(f, 3, /globals: true needs a superuser, and user "tyk" is not one/);
    expect(res.stderr).toMatch(/Fix: back up as a superuser/);
  });
});

describe('PostgreSQL restores that must be refused before touching the target', () => {
  it('a target server older than the dump\'s source: exit 6, names both versions, nothing created', async () => {
    const snapDir = path.join(ws.storeDir, 'snapshots', goodSnapshot);
    const file = path.join(snapDir, 'manifest.json');
    const saved = await readFile(file, 'utf8');
    // Pretend the dump came from PostgreSQL 17: this 15 server is then too old for it.
    const m = JSON.parse(saved);
    m.components.pg.source.server_version = '17.2';
    m.components.pg.source.server_version_num = 170002;
    await writeFile(file, JSON.stringify(m));
    try {
      const f = await ws.writeConfig('older.yaml', config(component({ extra: `    restore: { target: { database: never_created, username: ${pg.superuser}, password: "\${PG_SUPER}" } }\n` })));
      const res = await runCli(['restore', '--plan', 'database', '-c', f, '--yes', '--snapshot', goodSnapshot], { env: { PG_PASSWORD: TYK_PASSWORD, PG_SUPER: pg.superPassword } });
      expect(res.code, res.stdout + res.stderr).toBe(6);
      expect(res.stdout + res.stderr).toMatch(/runs PostgreSQL 15\.\d+, older than the snapshot's source \(PostgreSQL 17\.2\)/);
      expect(res.stdout + res.stderr).not.toContain(pg.superPassword);
      const dbs = await pg.query<{ d: string }>('postgres', `SELECT datname AS d FROM pg_database WHERE datname = 'never_created'`);
      expect(dbs).toEqual([]);
    } finally {
      await writeFile(file, saved);
    }
  });

  it('restore.owners: keep with a role the target lacks: exit 6, names the role, nothing created', async () => {
    await pg.query('postgres', `CREATE ROLE restorer LOGIN CREATEDB PASSWORD 'restorer-pw-1'`);
    // The dump names "tyk" as owner; pretend the target lacks it by asking for a role that does not exist.
    const snapDir = path.join(ws.storeDir, 'snapshots', goodSnapshot);
    const file = path.join(snapDir, 'manifest.json');
    const saved = await readFile(file, 'utf8');
    const m = JSON.parse(saved);
    m.components.pg.source.roles = ['tyk', 'tyk_gone'];
    await writeFile(file, JSON.stringify(m));
    try {
      const f = await ws.writeConfig('keep.yaml', config(component({ extra: `    restore: { owners: keep, target: { database: never_created2, username: restorer, password: "\${PG_R}" } }\n` })));
      const res = await runCli(['restore', '--plan', 'database', '-c', f, '--yes', '--snapshot', goodSnapshot], { env: { PG_PASSWORD: TYK_PASSWORD, PG_R: 'restorer-pw-1' } });
      expect(res.code, res.stdout + res.stderr).toBe(6);
      expect(res.stdout + res.stderr).toMatch(/cannot keep the dump's owners \(restore\.owners is keep\): roles "tyk_gone" do not exist on 127\.0\.0\.1:\d+/);
      const dbs = await pg.query<{ d: string }>('postgres', `SELECT datname AS d FROM pg_database WHERE datname = 'never_created2'`);
      expect(dbs).toEqual([]);
    } finally {
      await writeFile(file, saved);
    }
  });

  it('restore.owners: auto with a missing role restores without owners and warns', async () => {
    const snapDir = path.join(ws.storeDir, 'snapshots', goodSnapshot);
    const file = path.join(snapDir, 'manifest.json');
    const saved = await readFile(file, 'utf8');
    const m = JSON.parse(saved);
    m.components.pg.source.roles = ['tyk', 'tyk_gone'];
    await writeFile(file, JSON.stringify(m));
    try {
      const f = await ws.writeConfig('auto.yaml', config(component({ extra: `    restore: { target: { database: restored_by_restorer, username: restorer, password: "\${PG_R}" } }\n` })));
      const res = await runCli(['restore', '--plan', 'database', '-c', f, '--yes', '--json', '--snapshot', goodSnapshot], { env: { PG_PASSWORD: TYK_PASSWORD, PG_R: 'restorer-pw-1' } });
      expect(res.code, res.stdout + res.stderr).toBe(0);
      const step = JSON.parse(res.stdout).report.steps.find((s: any) => s.id === 'database');
      expect(step.details.pg.owners).toBe('skipped');
      expect(step.details.pg.missing_roles).toEqual(['tyk_gone']);
      expect(step.details.pg.roles_not_usable).toEqual(['tyk']);
      expect(step.details.pg.warnings.join(' ')).toMatch(/"tyk_gone" do not exist .* user "restorer" owns every object/);
      const owners = await pg.query<{ o: string }>('restored_by_restorer', `SELECT DISTINCT tableowner AS o FROM pg_tables WHERE schemaname = 'public'`);
      expect(owners.map((o) => o.o)).toEqual(['restorer']);
    } finally {
      await writeFile(file, saved);
    }
  });

  it('restore.owners: auto as a user that may not hand objects to the owner role: owners skipped, warned, restore ok', async () => {
    const f = await ws.writeConfig('notmember.yaml', config(component({ extra: `    restore: { target: { database: restored_not_member, username: restorer, password: "\${PG_R}" } }\n` })));
    const res = await runCli(['restore', '--plan', 'database', '-c', f, '--yes', '--json', '--snapshot', goodSnapshot], { env: { PG_PASSWORD: TYK_PASSWORD, PG_R: 'restorer-pw-1' } });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const step = JSON.parse(res.stdout).report.steps.find((s: any) => s.id === 'database');
    expect(step.details.pg).toMatchObject({ owners: 'skipped', roles_not_usable: ['tyk'], pg_restore_errors: 0 });
    expect(step.details.pg.warnings.join(' ')).toMatch(/user "restorer" is neither a superuser nor a member of "tyk"/);
    expect(step.checks.map((c: any) => c.status)).toEqual(['passed', 'passed']);
  });
});
