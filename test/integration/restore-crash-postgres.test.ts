import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { eventually, mulberry32, processesUsing, runAndKill, type KillTrigger } from '../helpers/crash.js';
import { seedTykDashboard, startPostgres, TYK_PASSWORD, TYK_USER, type PostgresServer } from '../helpers/postgres.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * kill -9 of `tykdr restore --plan database` (pg_restore --clean into the backed-up database) at 10 seeded
 * points, half timed from the step's first progress line, half from the moment pg_restore's session is seen
 * running on the server. After each kill: the database is untouched, whole, or the dry run says PARTIAL
 * (from the journal); `--resume` makes every table hold exactly the snapshot's rows; pg_restore died with
 * tykdr (its watchdog), and after the next run no staged plaintext is left.
 */
const DB = 'tyk_analytics';
const SEED = 20261206;
const KILLS = 10;

let pg: PostgresServer;
let ws: Workspace;
let configFile: string;
let staging: string;
let snapshot: Map<string, string>;

const env = { PG_PASSWORD: TYK_PASSWORD };
const cli = (args: string[]) => runCli([...args, '-c', configFile], { env, cwd: ws.dir });

/** Every table of the database (analytics tables are excluded from the backup and kept: left out) with a digest of its rows. */
async function state(): Promise<Map<string, string>> {
  const tables = await pg.query<{ t: string }>(
    DB,
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.relname NOT LIKE 'tyk\\_%analytics%' AND c.relname <> 'tyk_aggregated' ORDER BY 1`,
  );
  const out = new Map<string, string>();
  for (const { t } of tables) {
    const [d] = await pg.query<{ d: string | null }>(DB, `SELECT md5(string_agg(row_to_json(x)::text, E'\\n' ORDER BY row_to_json(x)::text)) AS d FROM ${t} x`);
    out.set(t, d?.d ?? 'empty');
  }
  return out;
}

const same = (a: Map<string, string>, b: Map<string, string>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
const journals = async () => (await readdir(path.join(staging, 'tykdr-journal')).catch(() => [] as string[])).filter((j) => j.endsWith('.json'));

/** The damage a restore undoes (on a database that is whole): rows lost and changed. */
async function damage(): Promise<void> {
  await pg.query(DB, 'DELETE FROM bulk WHERE id > 1500');
  await pg.query(DB, 'UPDATE tyk_policies SET rate = 0');
}

beforeAll(async () => {
  [pg, ws] = await Promise.all([startPostgres(), makeWorkspace()]);
  staging = path.join(ws.dir, 'staging');
  await seedTykDashboard(pg, DB);
  await pg.query(DB, `CREATE TABLE bulk (id int PRIMARY KEY, body text NOT NULL)`);
  await pg.query(DB, `INSERT INTO bulk SELECT i, repeat(md5(i::text), 40) FROM generate_series(1, 3000) i`);
  await pg.query(DB, `ALTER TABLE bulk OWNER TO ${TYK_USER}`);
  configFile = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  pg:
    kind: postgres
    host: 127.0.0.1
    port: ${pg.port}
    database: ${DB}
    username: ${TYK_USER}
    password: \${PG_PASSWORD}
    binDir: ${pg.binDir}
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
  await Promise.all([pg?.stop(), ws?.cleanup()]);
});

describe('kill -9 of a PostgreSQL restore at seeded random points', () => {
  it(`${KILLS} kills: the database is untouched, whole or reported partial, and --resume restores the snapshot's rows`, async () => {
    const args = ['restore', '--plan', 'database', '--yes'];
    const pgRestoreRuns: KillTrigger = {
      probe: async () =>
        (await pg.query<{ n: string }>('postgres', `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'tykdr' AND datname = $1 AND state = 'active'`, [DB]))[0]!.n !== '0',
    };
    const triggers: KillTrigger[] = [{ mark: 'restoring pg (postgres)' }, pgRestoreRuns];
    const windows: number[] = [];
    for (const t of triggers) {
      await damage();
      const full = await runAndKill([...args, '-c', configFile], { cwd: ws.dir, env }, t, 3_600_000);
      expect(full.code, full.stderr).toBe(0);
      expect(full.triggeredAt, full.stderr).not.toBeNull();
      windows.push(full.endedAt - full.triggeredAt!);
      expect(same(await state(), snapshot)).toBe(true);
    }
    await damage();
    const old = await state();
    expect(same(old, snapshot)).toBe(false);

    const random = mulberry32(SEED);
    const seen = { untouched: 0, whole: 0, partial: 0, killed: 0 };
    for (let i = 0; i < KILLS; i++) {
      if (i > 0) await damage();
      const which = i % 2;
      const at = Math.round(random() * windows[which]!);
      const where = `kill ${i} (${which === 0 ? 'from the step start' : 'from pg_restore running'} + ${at} ms)`;
      const run = await runAndKill([...args, '-c', configFile], { cwd: ws.dir, env }, triggers[which]!, at);
      if (run.killed) seen.killed++;
      else expect(run.code, run.stderr).toBe(0);
      await eventually(`no process using ${staging} after ${where}`, async () => (await processesUsing(staging)).length === 0);
      // A killed pg_restore's server session ends once its socket closes.
      await eventually('the killed sessions to end', async () => (await pg.query<{ n: string }>('postgres', `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'tykdr'`))[0]!.n === '0');

      const now = await state();
      const st = same(now, old) ? 'untouched' : same(now, snapshot) ? 'whole' : 'partial';
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
      expect(same(await state(), snapshot), `${where}: the database does not hold the snapshot's rows after the next run`).toBe(true);
      expect((await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-')), where).toEqual([]);
    }
    console.log(`postgres kill -9 outcomes over ${KILLS} seeded points: ${JSON.stringify(seen)}`);
    expect(seen.killed, JSON.stringify(seen)).toBeGreaterThan(0);
  }, 600_000);
});
