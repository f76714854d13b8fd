import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Db, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveParser } from '../../src/backends/mongo/archive-inspector.js';
import { inspectMongoTarget } from '../../src/backends/mongo/target/inspect-target.js';
import { loadConfig, type MongoComponent } from '../../src/core/config/load.js';
import { runCli } from '../helpers/cli.js';
import { ANALYTICS_COLLECTIONS, DASHBOARD_COLLECTIONS, dumpDatabase, seedTykDashboard, startFerret, type FerretServer } from '../helpers/mongo.js';
import { toolsBin } from '../helpers/paths.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

let ferret: FerretServer;
let ws: Workspace;
let client: MongoClient;
let source: Db;
let original: Record<string, string[]>;
let configFile: string;
let manifest: any;
let snapshotId: string;
let wrapperDir: string;
/** TMPDIR of the tykdr runs: where the tools' config file lives for a moment. */
let privateTmp: string;
const env = () => ({ MONGO_PASSWORD: ferret.password, TMPDIR: privateTmp });

/** The password comes from the environment, as the README recommends; the URI carries no authSource. */
const config = (extra: { restoreDb?: string; excludes?: string; binDir?: string } = {}) => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  dashboard-db:
    kind: mongo
    uri: "mongodb://${ferret.username}:\${MONGO_PASSWORD}@127.0.0.1:${ferret.port}/"
    database: tyk_analytics
    binDir: ${extra.binDir ?? wrapperDir}
${extra.excludes ? `    excludeCollections: ${extra.excludes}\n` : ''}    restore:
      ${extra.restoreDb ? `database: ${extra.restoreDb}` : 'ferretdb: true'}
restore: { reportDir: ./reports }
`;

async function restore(file: string) {
  const res = await runCli(['restore', '--plan', 'database', '-c', file, '--yes', '--json'], { env: env() });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  return JSON.parse(res.stdout).report;
}

const checksOf = (report: any) => Object.fromEntries(report.steps.flatMap((s: any) => s.checks.map((c: any) => [c.name, c])));

beforeAll(async () => {
  [ferret, ws] = await Promise.all([startFerret(), makeWorkspace()]);
  client = await ferret.client();
  source = client.db('tyk_analytics');
  await seedTykDashboard(source);
  original = await dumpDatabase(source);
  // Wrappers that record how tykdr starts the tools (argv, environment) and then run the real ones.
  wrapperDir = await mkdtemp(path.join(tmpdir(), 'tykdr-mongo-wrap-'));
  privateTmp = await mkdtemp(path.join(tmpdir(), 'tykdr-mongo-tmp-'));
  for (const tool of ['mongodump', 'mongorestore']) {
    const file = path.join(wrapperDir, tool);
    await writeFile(
      file,
      `#!/bin/sh\nprintf '%s\\n' "$@" >> "${wrapperDir}/${tool}.argv"\nenv >> "${wrapperDir}/${tool}.env"\n` +
        `readlink /proc/$$/fd/3 >> "${wrapperDir}/${tool}.fd3"\nexec "${toolsBin}/${tool}" "$@"\n`,
    );
    await chmod(file, 0o755);
  }
  configFile = await ws.writeConfig('tykdr.yaml', config({ restoreDb: 'tyk_restored' }));
  const res = await runCli(['backup', '-c', configFile, '--json'], { env: env() });
  expect(res.code, res.stderr).toBe(0);
  ({ id: snapshotId, manifest } = JSON.parse(res.stdout));
});

afterAll(async () => {
  await Promise.all([ferret?.stop(), ws?.cleanup(), wrapperDir && rm(wrapperDir, { recursive: true, force: true }), privateTmp && rm(privateTmp, { recursive: true, force: true })]);
});

describe('tykdr backup of a MongoDB component (FerretDB)', () => {
  it('records every Dashboard collection with its documents and indexes, and leaves analytics out', () => {
    const entry = manifest.components['dashboard-db'];
    expect(entry.kind).toBe('mongo');
    expect(entry.artifact.format).toBe('mongo-archive');
    expect(entry.artifact.name).toBe('dashboard-db.mongo-archive.zst.age');
    const src = entry.source;
    expect(Object.keys(src.collections).sort()).toEqual(DASHBOARD_COLLECTIONS);
    for (const name of DASHBOARD_COLLECTIONS) {
      expect(src.collections[name].documents, name).toBe(original[name]!.length);
      expect(src.collections[name].documents_before_dump, name).toBe(original[name]!.length);
    }
    expect(src.total_documents).toBe(DASHBOARD_COLLECTIONS.reduce((n, c) => n + original[c]!.length, 0));
    expect(src.excluded).toEqual(ANALYTICS_COLLECTIONS);
    expect(src.collections.tyk_apis.indexes.map((i: any) => i.name).sort()).toEqual(['_id_', 'api_id_unique', 'org_sort']);
    expect(src.collections.tyk_apis.indexes.find((i: any) => i.name === 'api_id_unique')).toEqual({
      name: 'api_id_unique',
      key: { 'api_definition.api_id': 1 },
      unique: true,
    });
    expect(src.collections.portal_developers.indexes.find((i: any) => i.name === 'email_org').key).toEqual({ email: 1, org_id: 1 });
    expect(src).toMatchObject({ database: 'tyk_analytics', address: `127.0.0.1:${ferret.port}`, ferretdb_version: 'v1.24.2', tool_version: '100.12.2', archive_format: '0.1', parallel_collections: 1 });
    expect(Date.parse(entry.consistent_at)).toBeGreaterThanOrEqual(Date.parse(entry.started_at));
  });

  it('keeps the password out of the manifest, argv and the tools’ environment, and leaves no temp file', async () => {
    const stored = await readFile(path.join(ws.storeDir, 'snapshots', snapshotId, 'manifest.json'), 'utf8');
    expect(stored).not.toContain(ferret.password);
    expect(manifest.components['dashboard-db'].source.uri).toBe(`mongodb://admin:[redacted]@127.0.0.1:${ferret.port}/`);
    const argv = await readFile(path.join(wrapperDir, 'mongodump.argv'), 'utf8');
    expect(argv).toContain('--config=/dev/fd/3');
    expect(argv).toContain('--db=tyk_analytics');
    expect(argv).toContain('--excludeCollectionsWithPrefix=z_tyk_analyticz');
    expect(argv).toContain('--excludeCollection=tyk_uptime_analytics');
    expect(argv).not.toContain(ferret.password);
    // tykdr adds no connection string to the tools' environment (they inherit tykdr's own, as any child does).
    expect(await readFile(path.join(wrapperDir, 'mongodump.env'), 'utf8')).not.toMatch(/mongodb:\/\//);
    // The URI reached mongodump as fd 3: a file already unlinked from a private folder, and that folder is gone.
    const fd3 = (await readFile(path.join(wrapperDir, 'mongodump.fd3'), 'utf8')).trim();
    expect(fd3).toMatch(new RegExp(`^${privateTmp}/tykdr-mongo-config-\\w+/tool\\.yaml \\(deleted\\)$`));
    expect((await readdir(privateTmp)).filter((n) => n.startsWith('tykdr-mongo-config-'))).toEqual([]);
  });

  it('stores a plain mongodump archive: age -d | zstd -d gives it back, whole', async () => {
    const object = path.join(ws.storeDir, 'snapshots', snapshotId, 'dashboard-db.mongo-archive.zst.age');
    const plain = execFileSync('sh', ['-c', `age -d -i "${ws.identityFile}" "${object}" | zstd -d -q`], { maxBuffer: 64 << 20 });
    expect(plain.subarray(0, 4).toString('hex')).toBe('6de29981');
    expect(plain.length).toBe(manifest.components['dashboard-db'].artifact.plaintext_bytes);
    const parser = new ArchiveParser();
    parser.feed(plain);
    parser.end();
    expect(parser.facts().namespaces['tyk_analytics.tyk_apis']!.documents).toBe(original.tyk_apis!.length);
  });
});

describe('tykdr restore --plan database (FerretDB target)', () => {
  it('restores into a fresh database (restore.database): checks pass, documents equal, analytics not restored', async () => {
    const report = await restore(configFile);
    expect(report.status).toBe('succeeded');
    const checks = checksOf(report);
    expect(checks['database-counts'].status).toBe('passed');
    expect(checks['database-counts'].detail).toMatch(/10 collections, \d+ documents, as in the snapshot; 4 excluded/);
    expect(checks['database-counts'].evidence.collections.tyk_apis).toEqual({ expected: 40, actual: 40 });
    expect(checks['database-counts'].evidence.excluded).toEqual(ANALYTICS_COLLECTIONS);
    expect(checks['database-indexes'].status).toBe('passed');
    expect(checks['database-indexes'].evidence.collections.tyk_analytics_users).toEqual({ expected: ['_id_', 'email_unique'], missing: [] });
    const details = report.steps.find((s: any) => s.id === 'database').details['dashboard-db'];
    expect(details).toMatchObject({ database: 'tyk_restored', source_database: 'tyk_analytics', ferretdb: { detected: true }, documents_failed: 0 });
    expect(JSON.stringify(report)).not.toContain(ferret.password);

    const restored = await dumpDatabase(client.db('tyk_restored'));
    const expected = Object.fromEntries(DASHBOARD_COLLECTIONS.map((c) => [c, original[c]]));
    expect(restored).toEqual(expected);
    const unique = (await client.db('tyk_restored').collection('tyk_apis').listIndexes().toArray()).find((i) => i.name === 'api_id_unique');
    expect(unique).toMatchObject({ key: { 'api_definition.api_id': 1 }, unique: true });
    // mongorestore was told to work one collection at a time, without its own index restore.
    const argv = await readFile(path.join(wrapperDir, 'mongorestore.argv'), 'utf8');
    for (const flag of ['--drop', '--nsInclude=tyk_analytics.*', '--nsFrom=tyk_analytics.*', '--nsTo=tyk_restored.*', '--noIndexRestore', '--numParallelCollections=1', '--numInsertionWorkersPerCollection=1']) {
      expect(argv).toContain(flag);
    }
    expect(argv).not.toContain(ferret.password);
  });

  it('inspects a target without changing it: the collections a restore would replace', async () => {
    const config = await loadConfig(configFile, { env: { ...process.env, ...env() } });
    const state = await inspectMongoTarget(config.components['dashboard-db'] as MongoComponent, manifest.components['dashboard-db']);
    expect(state).toMatchObject({ display: `mongo 127.0.0.1:${ferret.port}/tyk_restored (FerretDB v1.24.2)`, database: 'tyk_restored', ferretdbVersion: 'v1.24.2' });
    expect(state.overwritten).toEqual(DASHBOARD_COLLECTIONS);
    expect(state.documents).toBe(manifest.components['dashboard-db'].source.total_documents);
  });

  it('restores into the same database after the Dashboard collections were dropped and damaged', async () => {
    for (const name of DASHBOARD_COLLECTIONS.filter((n) => n !== 'tyk_apis')) await source.collection(name).drop();
    await source.collection('tyk_apis').deleteMany({ sort_by: { $lt: 10 } });
    await source.collection('tyk_apis').insertOne({ api_definition: { api_id: 'rogue', name: 'written after the snapshot' } });
    await source.collection('z_tyk_analyticz_abc').drop();
    const analyticsBefore = await source.collection('tyk_analytics').countDocuments();

    const sameDb = await ws.writeConfig('same-db.yaml', config());
    const report = await restore(sameDb);
    const checks = checksOf(report);
    expect(checks['database-counts'].status).toBe('passed');
    expect(checks['database-indexes'].status).toBe('passed');
    expect(report.steps.find((s: any) => s.id === 'database').details['dashboard-db'].ferretdb).toMatchObject({ configured: true });

    const now = await dumpDatabase(source);
    for (const name of DASHBOARD_COLLECTIONS) expect(now[name], name).toEqual(original[name]);
    // Analytics are not in the snapshot: a dropped one stays dropped, the others are untouched.
    expect(now.z_tyk_analyticz_abc).toBeUndefined();
    expect(await source.collection('tyk_analytics').countDocuments()).toBe(analyticsBefore);
    expect(checks['database-counts'].evidence.excluded_present_on_target).toEqual(['tyk_analytics', 'tyk_analytics_aggregates', 'tyk_uptime_analytics']);
  });

  it('backs up a capped collection when it is not excluded, and restores it capped', async () => {
    await source.collection('z_tyk_analyticz_abc').insertOne({ path: '/late', response_code: 200 });
    const file = await ws.writeConfig('capped.yaml', config({ restoreDb: 'tyk_capped', excludes: '["z_tyk_analyticz*"]' }));
    const backup = await runCli(['backup', '-c', file, '--json'], { env: env() });
    expect(backup.code, backup.stderr).toBe(0);
    const src = JSON.parse(backup.stdout).manifest.components['dashboard-db'].source;
    expect(src.collections.tyk_analytics).toMatchObject({ capped: true, size: 1024 * 1024, max: 5000, documents: 200 });
    expect(src.excluded).toEqual(['z_tyk_analyticz_abc']);

    const report = await restore(file);
    const counts = checksOf(report)['database-counts'];
    expect(counts.status).toBe('passed');
    expect(counts.evidence.collections.tyk_analytics).toMatchObject({ expected: 200, actual: 200, capped: { actual: { size: 1024 * 1024, max: 5000 } } });
    const [info] = await client.db('tyk_capped').listCollections({ name: 'tyk_analytics' }).toArray();
    expect(info).toMatchObject({ options: { capped: true, size: 1024 * 1024, max: 5000 } });
  });

  it('fails the checks when the target differs from the snapshot (they really look)', async () => {
    await restore(await ws.writeConfig('verify.yaml', config({ restoreDb: 'tyk_verify' })));
    const target = client.db('tyk_verify');
    await target.collection('tyk_policies').deleteOne({ id: 'pol3' });
    await target.collection('tyk_analytics_users').dropIndex('email_unique');
    const { checkDatabaseCounts, checkDatabaseIndexes } = await import('../../src/backends/mongo/target/mongo-checks.js');
    const { readMongoFacts } = await import('../../src/backends/mongo/facts.js');
    const facts = readMongoFacts(manifest.components['dashboard-db'], 'dashboard-db');
    const counts = await checkDatabaseCounts({ db: target, facts });
    expect(counts.status).toBe('failed');
    expect(counts.detail).toContain('tyk_policies: 11 documents, the snapshot has 12');
    const indexes = await checkDatabaseIndexes({ db: target, facts });
    expect(indexes.status).toBe('failed');
    expect(indexes.detail).toContain('tyk_analytics_users.email_unique');
  });
});
