import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { eventually, mulberry32, processesUsing, runAndKill } from '../helpers/crash.js';
import { readlink } from 'node:fs/promises';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, productionState, seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * kill -9 of `tykdr drill --plan full` at seeded points over its whole run (staging, the scratch Redis loading and
 * being checked, the files restored into a scratch folder, the report written to the store). After each kill:
 * production (the Redis and the config folder) is untouched, no process of the drill is left (the scratch server
 * dies with tykdr), every drill record the store holds is whole JSON, and the drill history still lists. The next
 * drill passes and removes what the killed ones staged.
 */
const SEED = 20261207;
const KILLS = 6;

let prod: RedisServer;
let ws: Workspace;
let tree: { root: string };
let configFile: string;
let staging: string;

const prodState = () => productionState(prod, tree.root);

/** Every file under the store's reports/ folder (drill and restore records, their HTML). */
async function storeReports(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(path.join(ws.storeDir, 'reports'));
  return out;
}

/**
 * Processes other than this one that hold a file under `dir` open, or run in it, or name it (a scratch redis-server
 * rewrites its command line into its title, so its open log file is what shows it).
 */
async function processesIn(dir: string): Promise<string[]> {
  const out = new Set(await processesUsing(dir));
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const links = [await readlink(`/proc/${pid}/cwd`).catch(() => '')];
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) links.push(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (links.some((l) => l.startsWith(dir))) out.add(`${pid}: ${(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim()}`);
  }
  return [...out];
}

beforeAll(async () => {
  [prod, ws, tree] = await Promise.all([startRedis(), makeWorkspace(), makeConfigTree()]);
  await seedTykRedis(prod.port, { sessions: 20_000 });
  staging = path.join(ws.dir, 'staging');
  configFile = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${prod.port}, restore: { mode: rdb-file, dataDir: /nonexistent, stopCommand: "false", startCommand: "false" } }
  config: { kind: files, roots: [${tree.root}], exclude: ["**/*.log"] }
restore: { stagingDir: ${staging}, reportDir: ./reports }
tiers: { critical: { rto: 1h, rpo: 24h }, important: { rto: 1h, rpo: 24h } }
`,
  );
  const res = await runCli(['backup', '-c', configFile]);
  expect(res.code, res.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await Promise.all([prod?.stop(), ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

describe('kill -9 of a drill at seeded random points', () => {
  it(`${KILLS} kills: production untouched, nothing left running, the store's records whole; the next drill passes and sweeps`, async () => {
    const args = ['drill', '--plan', 'full', '-c', configFile];
    const before = await prodState();
    // Calibration: how long a whole drill runs, from spawn.
    const atSpawn = { probe: async () => true };
    // Meanwhile, the drill's scratch server must be seen by the probe the kills rely on.
    let seenRunning: string[] = [];
    let calibrating = true;
    const watching = (async () => {
      while (calibrating) {
        const now = (await processesIn(staging)).filter((p) => /redis-server/.test(p));
        if (now.length > 0) seenRunning = now;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const full = await runAndKill(args, { cwd: ws.dir }, atSpawn, 3_600_000);
    calibrating = false;
    await watching;
    expect(full.code, full.stdout + full.stderr).toBe(0);
    expect(seenRunning.length, 'the scratch redis-server was never seen holding a file in the staging folder').toBeGreaterThan(0);
    const window = full.endedAt - full.triggeredAt!;
    const random = mulberry32(SEED);
    let killed = 0;
    for (let i = 0; i < KILLS; i++) {
      const at = Math.round(random() * window);
      const where = `kill ${i} (+${at} ms of a ${window} ms drill)`;
      const run = await runAndKill(args, { cwd: ws.dir }, atSpawn, at);
      if (run.killed) killed++;
      else expect(run.code, `${where} came after the end\n${run.stdout}${run.stderr}`).toBe(0);
      await eventually(`no process of the drill left after ${where}`, async () => (await processesIn(staging)).length === 0, 15_000);
      expect(await prodState(), where).toEqual(before);
      for (const f of (await storeReports()).filter((n) => n.endsWith('.json'))) {
        const text = await readFile(f, 'utf8');
        expect(() => JSON.parse(text), `${where}: ${path.relative(ws.storeDir, f)} is not whole JSON`).not.toThrow();
      }
      const history = await runCli(['drills', '-c', configFile]);
      expect(history.code, `${where}: tykdr drills\n${history.stdout}${history.stderr}`).toBe(0);
    }
    expect(killed, 'no run was killed before its end').toBeGreaterThan(0);
    const next = await runCli(args, { cwd: ws.dir });
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect((await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-') || n.startsWith('tykdr-drill-'))).toEqual([]);
    expect(await prodState()).toEqual(before);
    // The records checked after each kill were there to check: every drill that ended stored one.
    expect((await storeReports()).filter((n) => n.endsWith('.json')).length).toBeGreaterThan(1);
  }, 600_000);
});
