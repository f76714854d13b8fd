import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';
import { runCli } from '../helpers/cli.js';
import { makeConfigTree } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/*
 * Evidence retention. The bug: `prune --confirm` with keepLast: 1 deleted 8 of 9 drill records and their
 * reports along with their snapshots. Reports are audit evidence: they stay for evidence.keepWithin
 * (default 400d) whatever happens to their snapshots, and go once older.
 */

const DAY = 86_400_000;
let ws: Workspace;
let tree: { root: string };
let config: string;
const ids: string[] = [];

/** Every file under reports/ in the store, as "<snapshot>/<name>". */
async function storedReports(): Promise<string[]> {
  const root = path.join(ws.storeDir, 'reports');
  const out: string[] = [];
  for (const id of await readdir(root).catch(() => [] as string[])) for (const n of await readdir(path.join(root, id))) out.push(`${id}/${n}`);
  return out.sort();
}

beforeAll(async () => {
  [ws, tree] = await Promise.all([makeWorkspace(), makeConfigTree()]);
  const key = await runCli(['key', 'generate', '--signing', '--output', path.join(ws.dir, 'signing.pem')]);
  expect(key.code, key.stderr).toBe(0);
  config = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
signing: { keyFile: ./signing.pem, verifyKeys: ["${key.stdout.trim()}"] }
retention: { keepLast: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 }
restore: { reportDir: ./reports }
components:
  config: { kind: files, roots: [${tree.root}], exclude: ["**/*.log"] }
`,
  );
  // Nine snapshots, each with a drill record (JSON, its signature, Markdown, HTML).
  for (let i = 0; i < 9; i++) {
    const b = await runCli(['backup', '-c', config, '--json']);
    expect(b.code, b.stderr).toBe(0);
    ids.push(JSON.parse(b.stdout).id);
    const d = await runCli(['drill', '--plan', 'gateway', '--snapshot', ids[i]!, '-c', config]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
  }
}, 600_000);

afterAll(async () => {
  await Promise.all([ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

describe('prune keeps restore and drill evidence within evidence.keepWithin', () => {
  let reportsBefore: string[];

  it('nine drills left nine signed drill records', async () => {
    reportsBefore = await storedReports();
    expect(reportsBefore).toHaveLength(36);
    expect(reportsBefore.filter((r) => r.endsWith('.json.sig'))).toHaveLength(9);
    const drills = await runCli(['drills', '-c', config, '--json']);
    expect(JSON.parse(drills.stdout).drills).toHaveLength(9);
  });

  it('a dry run counts no report among what would go, and says they stay', async () => {
    const res = await runCli(['prune', '-c', config, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.totals).toMatchObject({ kept: 1, toRemove: 8 });
    // Each snapshot is 3 objects (artifact, manifest.json.sig, manifest.json); its 4 report files stay.
    expect(out.totals.objects).toBe(8 * 3);
    for (const s of out.snapshots.filter((x: any) => !x.keep)) expect(s.removal.evidenceKept).toBe(4);
    expect(await storedReports()).toEqual(reportsBefore);
  });

  it('prune --confirm with keepLast: 1 removes 8 snapshots and keeps all 9 drill records and their reports', async () => {
    const res = await runCli(['prune', '-c', config, '--confirm']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('4 report file(s) kept as evidence (younger than evidence.keepWithin)');
    expect(res.stdout).toMatch(/Removed 8 snapshot\(s\): 24 objects deleted/);
    expect(await readdir(path.join(ws.storeDir, 'snapshots'))).toEqual([ids[8]]);
    expect(await storedReports()).toEqual(reportsBefore);
    const drills = await runCli(['drills', '-c', config, '--json']);
    expect(JSON.parse(drills.stdout).drills.map((d: any) => d.snapshot).sort()).toEqual([...ids].sort());
    // The evidence still proves itself: the signature of a report whose snapshot is gone still verifies.
    const local = (await readdir(path.join(ws.dir, 'reports'))).filter((n) => n.endsWith('.json'));
    expect(local).toHaveLength(9);
    // The drill record of the oldest snapshot, read from that snapshot's folder: local names sort by the second
    // they were written, then a random suffix, so two drills in one second need not sort in the order they ran.
    const first = (await readdir(path.join(ws.storeDir, 'reports', ids[0]!))).filter((n) => n.endsWith('.json'));
    expect(first).toHaveLength(1);
    const v = await runCli(['report', 'verify', path.join(ws.storeDir, 'reports', ids[0]!, first[0]!), '-c', config]);
    expect(v.code, v.stderr).toBe(0);
    // A second prune keeps them too: reports of snapshots already gone stay while they are evidence.
    const again = await runCli(['prune', '-c', config, '--confirm', '--json']);
    expect(JSON.parse(again.stdout).orphan_reports).toMatchObject({ removed: 0, kept: 32 });
    expect(await storedReports()).toEqual(reportsBefore);
  });

  it('once older than keepWithin, reports of snapshots already gone are removed; those of a kept snapshot stay', async () => {
    const store = new LocalStore(ws.storeDir);
    const policy = { keepLast: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: '1d' };
    const soon = await pruneSnapshots({ store, policy, evidence: { keepWithin: '30d' }, confirm: true, now: new Date(Date.now() + 29 * DAY) });
    expect(soon.orphanReports).toMatchObject({ removed: 0, kept: 32 });
    expect(await storedReports()).toEqual(reportsBefore);

    const preview = await pruneSnapshots({ store, policy, evidence: { keepWithin: '30d' }, confirm: false, now: new Date(Date.now() + 31 * DAY) });
    expect(preview.orphanReports).toMatchObject({ removed: 32, kept: 0 });
    expect(await storedReports()).toEqual(reportsBefore);

    const later = await pruneSnapshots({ store, policy, evidence: { keepWithin: '30d' }, confirm: true, now: new Date(Date.now() + 31 * DAY) });
    expect(later.orphanReports).toMatchObject({ removed: 32, kept: 0, locked: 0 });
    expect(later.orphanReports.error).toBeUndefined();
    expect(await storedReports()).toEqual(reportsBefore.filter((r) => r.startsWith(`${ids[8]}/`)));
    expect(await readdir(path.join(ws.storeDir, 'snapshots'))).toEqual([ids[8]]);
  });

  it('the default keepWithin is 400 days: a snapshot that goes takes its reports only once they are older', async () => {
    // A newer snapshot that passed a drill, so that no rule keeps ids[8] any more.
    const b = await runCli(['backup', '-c', config, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const d = await runCli(['drill', '--plan', 'gateway', '--snapshot', JSON.parse(b.stdout).id, '-c', config]);
    expect(d.code, d.stderr).toBe(0);
    const store = new LocalStore(ws.storeDir);
    const policy = { keepLast: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: '1d' };
    const young = await pruneSnapshots({ store, policy, confirm: false, now: new Date(Date.now() + 399 * DAY) });
    expect(young.snapshots.find((s) => s.id === ids[8])!.removal).toMatchObject({ status: 'would-remove', objects: 3, evidenceKept: 4 });
    const old = await pruneSnapshots({ store, policy, confirm: false, now: new Date(Date.now() + 401 * DAY) });
    const removal = old.snapshots.find((s) => s.id === ids[8])!.removal!;
    expect(removal).toMatchObject({ status: 'would-remove', objects: 7 });
    expect(removal.evidenceKept).toBeUndefined();
  });
});
