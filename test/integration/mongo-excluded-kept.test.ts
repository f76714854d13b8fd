import type { Db, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { DASHBOARD_COLLECTIONS, dumpCollection, dumpDatabase, seedTykDashboard, startFerret, type FerretServer } from '../helpers/mongo.js';
import { toolsBin } from '../helpers/paths.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * "A restore never destroys what it did not back up", MongoDB: collections left out by excludeCollections are not in
 * the archive, and mongorestore --drop drops only the collections it restores. Proved with FerretDB and the real tools.
 */

let ferret: FerretServer;
let ws: Workspace;
let client: MongoClient;
let source: Db;
/** Every collection as it was at the snapshot. */
let atSnapshot: Record<string, string[]>;

const EXCLUDED = ['tyk_analytics', 'tyk_analytics_aggregates', 'tyk_uptime_analytics', 'z_tyk_analyticz_abc'];
const env = () => ({ MONGO_PASSWORD: ferret.password });

const config = (restoreDb?: string) => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  dashboard-db:
    kind: mongo
    uri: "mongodb://${ferret.username}:\${MONGO_PASSWORD}@127.0.0.1:${ferret.port}/"
    database: tyk_analytics
    binDir: ${toolsBin}
${restoreDb ? `    restore: { database: ${restoreDb} }\n` : ''}restore: { reportDir: ./reports }
`;

async function restore(file: string, plan: string): Promise<any> {
  const res = await runCli(['restore', '--plan', plan, '-c', file, '--yes', '--json'], { env: env() });
  expect(res.stdout + res.stderr).not.toContain(ferret.password);
  expect(res.code, res.stdout + res.stderr).toBe(0);
  return JSON.parse(res.stdout).report;
}

const uptime = (n: number, from: number) =>
  Array.from({ length: n }, (_, i) => ({ url: `http://upstream-${(from + i) % 7}.internal/health`, response_code: 200, seq: from + i, org_id: 'org1' }));

async function indexNames(db: Db, name: string): Promise<string[]> {
  return (await db.collection(name).indexes()).map((i) => String(i.name)).sort();
}

beforeAll(async () => {
  [ferret, ws] = await Promise.all([startFerret(), makeWorkspace()]);
  client = await ferret.client();
  source = client.db('tyk_analytics');
  await seedTykDashboard(source);
  await source.collection('tyk_uptime_analytics').insertMany(uptime(3000, 100));
  atSnapshot = await dumpDatabase(source);
  const res = await runCli(['backup', '-c', await ws.writeConfig('tykdr.yaml', config()), '--json'], { env: env() });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  const src = JSON.parse(res.stdout).manifest.components['dashboard-db'].source;
  expect(src.excluded).toEqual(EXCLUDED);
  expect(Object.keys(src.collections).sort()).toEqual(DASHBOARD_COLLECTIONS);
});

afterAll(async () => {
  await client?.close();
  await Promise.all([ferret?.stop(), ws?.cleanup()]);
});

describe('restore --plan full into the backed-up database (FerretDB)', () => {
  let before: Record<string, string[]>;
  let uptimeIndexes: string[];

  beforeAll(async () => {
    // After the snapshot: Pump writes analytics (and an index), someone adds a collection and damages the Dashboard's.
    await source.collection('tyk_uptime_analytics').insertMany(uptime(500, 5000));
    await source.collection('tyk_uptime_analytics').createIndex({ seq: 1 }, { name: 'seq_1' });
    await source.collection('notes_after_snapshot').insertMany([{ n: 1 }, { n: 2 }]);
    await source.collection('tyk_apis').deleteMany({});
    await source.collection('tyk_policies').updateMany({}, { $set: { rate: 0 } });
    before = {};
    for (const c of [...EXCLUDED, 'notes_after_snapshot']) before[c] = await dumpCollection(source, c);
    expect(before.tyk_uptime_analytics!.length).toBe(3520);
    uptimeIndexes = await indexNames(source, 'tyk_uptime_analytics');
    expect(uptimeIndexes).toContain('seq_1');
    const report = await restore(await ws.writeConfig('same.yaml', config()), 'full');
    expect(report.status).toBe('succeeded');
  });

  it('excluded collections keep every document, including those written after the snapshot, and their indexes', async () => {
    for (const c of EXCLUDED) expect(await dumpCollection(source, c), c).toEqual(before[c]);
    expect(await indexNames(source, 'tyk_uptime_analytics')).toEqual(uptimeIndexes);
  });

  it('a collection the snapshot does not have is left alone', async () => {
    expect(await dumpCollection(source, 'notes_after_snapshot')).toEqual(before.notes_after_snapshot);
  });

  it("the Dashboard's collections equal the snapshot again", async () => {
    for (const c of DASHBOARD_COLLECTIONS) expect(await dumpCollection(source, c), c).toEqual(atSnapshot[c]);
  });
});

describe('restore into another database (restore.database) that holds analytics already', () => {
  it('its excluded collection keeps its documents; the Dashboard collections are replaced', async () => {
    const other = client.db('tyk_other');
    await other.collection('tyk_analytics_aggregates').insertMany(Array.from({ length: 1200 }, (_, i) => ({ org_id: 'org9', i })));
    await other.collection('tyk_apis').insertMany([{ api_definition: { api_id: 'stale', name: 'stale' } }]);
    const aggregates = await dumpCollection(other, 'tyk_analytics_aggregates');
    expect(aggregates.length).toBe(1200);

    const report = await restore(await ws.writeConfig('other.yaml', config('tyk_other')), 'database');
    const step = report.steps.find((s: any) => s.id === 'database');
    expect(step.checks.map((c: any) => [c.name, c.status])).toEqual([
      ['database-counts', 'passed'],
      ['database-indexes', 'passed'],
    ]);
    expect(step.details['dashboard-db'].collections_before).toEqual(['tyk_analytics_aggregates', 'tyk_apis']);
    expect(await dumpCollection(other, 'tyk_analytics_aggregates')).toEqual(aggregates);
    expect(await dumpCollection(other, 'tyk_apis')).toEqual(atSnapshot.tyk_apis);
  });
});
