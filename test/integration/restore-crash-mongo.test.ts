import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Db, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { eventually, mulberry32, processesUsing, runAndKill, type KillTrigger } from '../helpers/crash.js';
import { DASHBOARD_COLLECTIONS, dumpCollection, seedTykDashboard, startFerret, type FerretServer } from '../helpers/mongo.js';
import { toolsBin } from '../helpers/paths.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * kill -9 of `tykdr restore --plan database` (mongorestore --drop into FerretDB, the backed-up database) at 10
 * seeded points, half timed from the step's first progress line, half from the moment mongorestore runs.
 * After each kill: the database is untouched, whole, or the dry run says PARTIAL (from the journal);
 * `--resume` makes every Dashboard collection hold exactly the snapshot's documents; mongorestore died with
 * tykdr, and after the next run no staged plaintext is left.
 */
const SEED = 20261206;
const KILLS = 10;

let ferret: FerretServer;
let ws: Workspace;
let client: MongoClient;
let db: Db;
let configFile: string;
let staging: string;
let snapshot: string;

const env = () => ({ MONGO_PASSWORD: ferret.password });
const cli = (args: string[]) => runCli([...args, '-c', configFile], { env: env(), cwd: ws.dir });

/** The Dashboard's collections, document by document (the analytics ones are not backed up). */
async function state(): Promise<string> {
  const out: Record<string, string[]> = {};
  for (const c of DASHBOARD_COLLECTIONS) out[c] = await dumpCollection(db, c);
  return JSON.stringify(out);
}

const journals = async () => (await readdir(path.join(staging, 'tykdr-journal')).catch(() => [] as string[])).filter((j) => j.endsWith('.json'));

/** The damage a restore undoes (on a database that is whole): documents lost and changed. */
async function damage(): Promise<void> {
  await db.collection('tyk_apis').deleteMany({ 'api_definition.name': { $regex: '[13579]$' } });
  await db.collection('tyk_policies').updateMany({}, { $set: { rate: 0 } });
}

beforeAll(async () => {
  [ferret, ws] = await Promise.all([startFerret(), makeWorkspace()]);
  client = await ferret.client();
  db = client.db('tyk_analytics');
  staging = path.join(ws.dir, 'staging');
  await seedTykDashboard(db, { apis: 1500, analytics: 10 });
  configFile = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  dashboard-db:
    kind: mongo
    uri: "mongodb://${ferret.username}:\${MONGO_PASSWORD}@127.0.0.1:${ferret.port}/"
    database: tyk_analytics
    binDir: ${toolsBin}
    restore: { ferretdb: true }
restore: { stagingDir: ${staging}, reportDir: ./reports }
# The test runs longer than the default RPOs: objectives are not what it checks.
tiers: { important: { rto: 1h, rpo: 24h } }
`,
  );
  const b = await cli(['backup']);
  expect(b.code, b.stdout + b.stderr).toBe(0);
  snapshot = await state();
}, 180_000);

afterAll(async () => {
  await client?.close();
  await Promise.all([ferret?.stop(), ws?.cleanup()]);
});

describe('kill -9 of a MongoDB restore at seeded random points', () => {
  it(`${KILLS} kills: the database is untouched, whole or reported partial, and --resume restores the snapshot's documents`, async () => {
    const args = ['restore', '--plan', 'database', '--yes'];
    const mongorestoreRuns: KillTrigger = { probe: async () => (await processesUsing('mongorestore')).length > 0 };
    const triggers: KillTrigger[] = [{ mark: 'restoring dashboard-db' }, mongorestoreRuns];
    const windows: number[] = [];
    for (const t of triggers) {
      await damage();
      const full = await runAndKill([...args, '-c', configFile], { cwd: ws.dir, env: env() }, t, 3_600_000);
      expect(full.code, full.stderr).toBe(0);
      expect(full.triggeredAt, full.stderr).not.toBeNull();
      windows.push(full.endedAt - full.triggeredAt!);
      expect(await state()).toBe(snapshot);
    }
    await damage();
    const old = await state();
    expect(old).not.toBe(snapshot);

    const random = mulberry32(SEED);
    const seen = { untouched: 0, whole: 0, partial: 0, killed: 0 };
    for (let i = 0; i < KILLS; i++) {
      if (i > 0) await damage();
      const which = i % 2;
      const at = Math.round(random() * windows[which]!);
      const where = `kill ${i} (${which === 0 ? 'from the step start' : 'from mongorestore running'} + ${at} ms)`;
      const run = await runAndKill([...args, '-c', configFile], { cwd: ws.dir, env: env() }, triggers[which]!, at);
      if (run.killed) seen.killed++;
      else expect(run.code, run.stderr).toBe(0);
      await eventually(`no mongorestore and no process using ${staging} after ${where}`, async () =>
        (await processesUsing(staging)).length === 0 && (await processesUsing('mongorestore')).length === 0,
      );

      const now = await state();
      const st = now === old ? 'untouched' : now === snapshot ? 'whole' : 'partial';
      seen[st]++;
      const left = await journals();
      if (st === 'partial') {
        expect(left.length, `${where} left a partial database and no journal`).toBeGreaterThan(0);
        const dry = await cli(['restore', '--plan', 'database', '--dry-run']);
        expect(dry.stdout, where).toMatch(/PARTIAL: restore \S+ of snapshot \S+ \(plan .*\) was killed during step database; targets may be partial: /);
      }
      if (left.length > 0) {
        const journal = JSON.parse(await readFile(path.join(staging, 'tykdr-journal', left[0]!), 'utf8')) as { incident_at: string };
        const resumed = await cli(['restore', '--resume', '--json']);
        expect(resumed.code, `${where}: --resume\n${resumed.stdout}\n${resumed.stderr}`).toBe(0);
        expect(JSON.parse(resumed.stdout).report.incident_at).toBe(journal.incident_at);
        expect(await journals()).toEqual([]);
      } else {
        const again = await cli(args);
        expect(again.code, again.stderr).toBe(0);
      }
      expect((await state()) === snapshot, `${where}: the database does not hold the snapshot's documents after the next run`).toBe(true);
      expect((await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-')), where).toEqual([]);
    }
    console.log(`mongo kill -9 outcomes over ${KILLS} seeded points: ${JSON.stringify(seen)}`);
    expect(seen.killed, JSON.stringify(seen)).toBeGreaterThan(0);
  }, 600_000);
});
