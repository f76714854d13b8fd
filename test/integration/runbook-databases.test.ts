import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Db, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seedTykDashboard as seedMongo, startFerret, type FerretServer } from '../helpers/mongo.js';
import { repoRoot, toolsBin } from '../helpers/paths.js';
import { seedTykDashboard as seedPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const exec = promisify(execFile);

/** The ```sh runbook-<name> block of docs/FORMAT.md: the test runs exactly what the docs say. */
function block(name: string): string {
  const doc = readFileSync(path.join(repoRoot, 'docs/FORMAT.md'), 'utf8');
  const m = new RegExp('```sh runbook-' + name + '\\n([\\s\\S]*?)```').exec(doc);
  if (!m) throw new Error(`docs/FORMAT.md has no runbook-${name} block`);
  return m[1]!;
}

let pg: PostgresServer;
let ferret: FerretServer;
let client: MongoClient;
let source: Db;
let ws: Workspace;
let work: string;
let snap: string;
let manifest: any;

beforeAll(async () => {
  [pg, ferret, ws] = await Promise.all([startPostgres(), startFerret(), makeWorkspace()]);
  await seedPostgres(pg, 'tyk_analytics');
  client = await ferret.client();
  source = client.db('tyk_analytics');
  await seedMongo(source);
  const file = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}] }
components:
  pg: { kind: postgres, port: ${pg.port}, database: tyk_analytics, username: ${pg.superuser}, password: "\${PG_PW}", binDir: ${pg.binDir} }
  mongo: { kind: mongo, uri: "mongodb://${ferret.username}:\${MONGO_PW}@127.0.0.1:${ferret.port}/", database: tyk_analytics, binDir: ${toolsBin} }
`,
  );
  const res = await runCli(['backup', '-c', file, '--json'], { env: { PG_PW: pg.superPassword, MONGO_PW: ferret.password } });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  manifest = JSON.parse(res.stdout).manifest;
  snap = path.join(ws.storeDir, 'snapshots', manifest.id);
  work = await mkdtemp(path.join(tmpdir(), 'tykdr-runbook-db-'));
});

afterAll(async () => {
  await client?.close();
  await Promise.all([pg?.stop(), ferret?.stop(), ws?.cleanup(), work && rm(work, { recursive: true, force: true })]);
});

describe('docs/FORMAT.md database runbooks, by hand with age, zstd, pg_restore and mongorestore', () => {
  it('PostgreSQL: pg_restore into a new database gives the manifest row counts', async () => {
    const { stdout } = await exec('bash', ['-euo', 'pipefail', '-c', block('postgres')], {
      env: {
        ...process.env,
        PATH: `${pg.binDir}:${process.env.PATH}`,
        SNAP: snap,
        IDENTITY: ws.identityFile,
        WORK: work,
        PG_COMPONENT: 'pg',
        PGHOST: '127.0.0.1',
        PGPORT: String(pg.port),
        PGUSER: pg.superuser,
        PGPASSWORD: pg.superPassword,
        PGDATABASE: 'tyk_runbook',
      },
    });
    expect(Number(stdout.trim().split('\n').pop())).toBe(manifest.components.pg.source.tables['public.tyk_apis']);
    const c = await pg.client('tyk_runbook');
    try {
      for (const [table, rows] of Object.entries(manifest.components.pg.source.tables as Record<string, number>)) {
        const r = await c.query(`select count(*)::int as n from ${table}`);
        expect(r.rows[0].n, table).toBe(rows);
      }
    } finally {
      await c.end();
    }
  });

  it('MongoDB: mongorestore of the archive brings back every collection with its documents', async () => {
    for (const name of Object.keys(manifest.components.mongo.source.collections)) await source.collection(name).drop().catch(() => undefined);
    const cfg = path.join(work, 'mongo.yaml');
    await writeFile(cfg, `uri: mongodb://${ferret.username}:${ferret.password}@127.0.0.1:${ferret.port}/\n`, { mode: 0o600 });
    await exec('bash', ['-euo', 'pipefail', '-c', block('mongo')], {
      env: {
        ...process.env,
        PATH: `${toolsBin}:${process.env.PATH}`,
        SNAP: snap,
        IDENTITY: ws.identityFile,
        WORK: work,
        MONGO_COMPONENT: 'mongo',
        MONGO_DB: 'tyk_analytics',
        MONGO_CONFIG: cfg,
      },
    });
    for (const [name, facts] of Object.entries(manifest.components.mongo.source.collections as Record<string, { documents: number; type?: string }>)) {
      if (facts.type === 'view') continue;
      expect(await source.collection(name).countDocuments(), name).toBe(facts.documents);
    }
    expect(await readFile(cfg, 'utf8')).toContain('uri:'); // the password stayed in the 0600 file
  });
});
