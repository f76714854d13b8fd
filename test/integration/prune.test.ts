import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { listSnapshots } from '../../src/core/catalog.js';
import { newSnapshotId } from '../../src/core/layout.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';
import { EXIT_CODE_TABLE } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { mulberry32, runAndKill } from '../helpers/crash.js';
import { fingerprintTree, makeWorkspace, type Workspace } from '../helpers/workspace.js';

const DAY = 86_400_000;
let ws: Workspace;
let tree: string;
let seed: { full: string; config: string };

const ago = (ms: number) => new Date(Date.now() - ms);

/** Copies a snapshot of the seed store into `storeDir` as if it had been taken at `at`. */
async function cloneSnapshot(storeDir: string, srcId: string, at: Date): Promise<string> {
  const id = newSnapshotId(at);
  const src = path.join(ws.dir, 'seed', 'snapshots', srcId);
  const dst = path.join(storeDir, 'snapshots', id);
  await mkdir(dst, { recursive: true });
  for (const n of await readdir(src)) if (n !== 'manifest.json') await copyFile(path.join(src, n), path.join(dst, n));
  const m = JSON.parse(await readFile(path.join(src, 'manifest.json'), 'utf8'));
  m.id = id;
  m.created_at = at.toISOString();
  m.completed_at = new Date(at.getTime() + 1000).toISOString();
  await writeFile(path.join(dst, 'manifest.json'), JSON.stringify(m, null, 2));
  return id;
}

/** An interrupted backup: an object and no manifest. */
async function incompleteSnapshot(storeDir: string, at: Date): Promise<string> {
  const id = newSnapshotId(at);
  await mkdir(path.join(storeDir, 'snapshots', id), { recursive: true });
  await writeFile(path.join(storeDir, 'snapshots', id, 'config.tar.zst.age'), 'partial bytes');
  return id;
}

/** A drill report made `at` (default: older than evidence.keepWithin's 400d, so prune may delete it with its snapshot). */
async function drillReport(storeDir: string, id: string, status: 'succeeded' | 'failed', at = ago(500 * DAY)): Promise<string> {
  const runId = newSnapshotId(at);
  const dir = path.join(storeDir, 'reports', id);
  await mkdir(dir, { recursive: true });
  const report = { format: 'tykdr-restore-report/1', id: runId, kind: 'drill', status, dry_run: false, snapshot: { id, created_at: '', location: storeDir }, steps: [] };
  await writeFile(path.join(dir, `drill-${runId}.json`), JSON.stringify(report));
  await writeFile(path.join(dir, `drill-${runId}.md`), `# drill ${status}\n`);
  for (const n of [`drill-${runId}.json`, `drill-${runId}.md`]) await utimes(path.join(dir, n), at, at);
  return runId;
}

const policy = (over = '') => `retention: { keepLast: 2, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: 1d${over} }\n`;

beforeAll(async () => {
  ws = await makeWorkspace();
  tree = await mkdtemp(path.join(tmpdir(), 'tykdr-prune-tree-'));
  await mkdir(path.join(tree, 'gw'));
  await mkdir(path.join(tree, 'certs'));
  await writeFile(path.join(tree, 'gw', 'tyk.conf'), JSON.stringify({ listen_port: 8080, secret: 'prune-test' }));
  await writeFile(path.join(tree, 'certs', 'a.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const components = `components:
  config: { kind: files, roots: [${path.join(tree, 'gw')}] }
  certs: { kind: files, roots: [${path.join(tree, 'certs')}] }
`;
  const enc = `encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }\n`;
  await ws.writeConfig('seed.yaml', `store: { kind: local, path: ./seed }\n${enc}${components}`);
  await ws.writeConfig('tykdr.yaml', `store: { kind: local, path: ./store }\n${enc}${policy()}${components}`);
  const full = await runCli(['backup', '-c', path.join(ws.dir, 'seed.yaml'), '--json']);
  expect(full.code, full.stderr).toBe(0);
  const config = await runCli(['backup', '-c', path.join(ws.dir, 'seed.yaml'), '--component', 'config', '--json']);
  expect(config.code, config.stderr).toBe(0);
  seed = { full: JSON.parse(full.stdout).id, config: JSON.parse(config.stdout).id };
});

afterAll(async () => {
  await ws?.cleanup();
  if (tree) await rm(tree, { recursive: true, force: true });
});

describe('tykdr prune on a local store', () => {
  const s: Record<string, string> = {};
  const cli = (...args: string[]) => runCli(['prune', '-c', path.join(ws.dir, 'tykdr.yaml'), ...args]);

  beforeAll(async () => {
    const store = ws.storeDir;
    s.full10 = await cloneSnapshot(store, seed.full, ago(10 * DAY));
    s.full9drilled = await cloneSnapshot(store, seed.full, ago(9 * DAY));
    s.full8drillFailed = await cloneSnapshot(store, seed.full, ago(8 * DAY));
    s.full7 = await cloneSnapshot(store, seed.full, ago(7 * DAY));
    s.config2 = await cloneSnapshot(store, seed.config, ago(2 * DAY));
    s.config1 = await cloneSnapshot(store, seed.config, ago(1 * DAY));
    s.incompleteOld = await incompleteSnapshot(store, ago(3 * DAY));
    s.incompleteYoung = await incompleteSnapshot(store, ago(3_600_000));
    await drillReport(store, s.full9drilled, 'succeeded');
    await drillReport(store, s.full8drillFailed, 'failed');
  });

  const expectedRemoved = () => [s.full10!, s.full8drillFailed!, s.incompleteOld!].sort();

  it('a dry run lists what would go and why, and deletes nothing', async () => {
    const before = await fingerprintTree(ws.storeDir);
    const res = await cli('--json');
    expect(res.code, res.stderr).toBe(0);
    expect(await fingerprintTree(ws.storeDir)).toEqual(before);
    const out = JSON.parse(res.stdout);
    expect(out.dry_run).toBe(true);
    const byId = Object.fromEntries(out.snapshots.map((e: any) => [e.id, e]));
    expect(out.snapshots.filter((e: any) => !e.keep).map((e: any) => e.id).sort()).toEqual(expectedRemoved());
    expect(byId[s.config1!].reasons).toEqual(['last 1 of 2', 'newest complete snapshot of component config']);
    expect(byId[s.config2!].reasons).toEqual(['last 2 of 2']);
    expect(byId[s.full7!].reasons).toEqual(['newest complete snapshot of component certs']);
    expect(byId[s.full9drilled!].reasons).toEqual(['newest snapshot that passed a drill']);
    expect(byId[s.full8drillFailed!].reasons).toEqual(['no retention rule keeps it']);
    expect(byId[s.incompleteOld!].reasons).toEqual(['incomplete, older than 1d']);
    expect(byId[s.incompleteYoung!].keep).toBe(true);
    // Reports of a removed snapshot go with it: the failed drill's .json and .md.
    expect(byId[s.full8drillFailed!].removal).toMatchObject({ status: 'would-remove', objects: 3 + 2 });
    expect(out.totals).toMatchObject({ kept: 5, toRemove: 3, removed: 0 });
    expect(out.totals.bytes).toBe(out.snapshots.filter((e: any) => !e.keep).reduce((n: number, e: any) => n + e.removal.bytes, 0));
  });

  it('the text dry run names what goes, and with --verbose what stays', async () => {
    const quiet = await cli();
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toContain('Dry run: nothing is deleted');
    expect(quiet.stdout).toMatch(new RegExp(`would remove\\s+${s.incompleteOld}\\s+INCOMPLETE.*incomplete, older than 1d`));
    expect(quiet.stdout).not.toContain(s.config1);
    expect(quiet.stdout).toMatch(/Would remove 3 snapshot\(s\) \(9 objects, [\d.]+ (B|KiB)\); keeping 5 snapshot\(s\)\./);
    const verbose = await cli('--verbose');
    expect(verbose.stdout).toMatch(new RegExp(`keep\\s+${s.full9drilled}\\s+complete.*newest snapshot that passed a drill`));
  });

  it('--confirm deletes what the dry run listed, with their reports, and keeps the guarded ones', async () => {
    const res = await cli('--confirm', '--json');
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.dry_run).toBe(false);
    expect(out.totals).toMatchObject({ kept: 5, toRemove: 3, removed: 3, locked: 0, failed: 0, objects: 9 });
    const left = await readdir(path.join(ws.storeDir, 'snapshots'));
    expect(left.sort()).toEqual([s.full9drilled, s.full7, s.config2, s.config1, s.incompleteYoung].sort());
    expect(await readdir(path.join(ws.storeDir, 'reports'))).toEqual([s.full9drilled]);
    const list = await listSnapshots(new LocalStore(ws.storeDir));
    expect(list.filter((x) => x.complete)).toHaveLength(4);

    const again = await cli('--confirm');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Removed 0 snapshot(s): 0 objects deleted, 0 B freed; keeping 5 snapshot(s).');
  });

  it('the text of a confirmed prune counts objects and bytes freed', async () => {
    const storeDir = path.join(ws.dir, 'store-text');
    await cloneSnapshot(storeDir, seed.full, ago(3 * DAY));
    await cloneSnapshot(storeDir, seed.full, ago(2 * DAY));
    await cloneSnapshot(storeDir, seed.full, ago(DAY));
    await ws.writeConfig('text.yaml', (await readFile(path.join(ws.dir, 'tykdr.yaml'), 'utf8')).replace('./store', './store-text'));
    const res = await runCli(['prune', '-c', path.join(ws.dir, 'text.yaml'), '--confirm']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/removed\s+\S+\s+complete.*no retention rule keeps it/);
    expect(res.stdout).toMatch(/Removed 1 snapshot\(s\): 3 objects deleted, [\d.]+ (B|KiB) freed; keeping 2 snapshot\(s\)\./);
  });
});

describe('tykdr prune sweeps unfinished uploads (local .partial- files)', () => {
  let config: string;
  let id: string;
  let dir: string;

  beforeAll(async () => {
    const storeDir = path.join(ws.dir, 'store-partials');
    id = await cloneSnapshot(storeDir, seed.full, ago(DAY));
    dir = path.join(storeDir, 'snapshots', id);
    // What two killed backups left: one two days ago, one a minute ago (a backup may still be writing it).
    await writeFile(path.join(dir, 'redis.rdb.zst.age.partial-0a0b0c0d'), Buffer.alloc(4096, 1));
    await utimes(path.join(dir, 'redis.rdb.zst.age.partial-0a0b0c0d'), ago(2 * DAY), ago(2 * DAY));
    await writeFile(path.join(dir, 'mongo.archive.zst.age.partial-01020304'), Buffer.alloc(100, 2));
    config = await ws.writeConfig('partials.yaml', (await readFile(path.join(ws.dir, 'tykdr.yaml'), 'utf8')).replace('./store', './store-partials'));
  });

  it('a dry run lists the stale one (JSON and text) and removes nothing', async () => {
    const json = await runCli(['prune', '-c', config, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const u = JSON.parse(json.stdout).unfinished_uploads;
    expect(u.grace).toBe('1d');
    expect(u.totals).toEqual({ stale: 1, removed: 0, failed: 0, bytes: 4096 });
    expect(u.uploads.map((x: any) => [x.key, x.stale, x.action])).toEqual([
      [`snapshots/${id}/redis.rdb.zst.age`, true, 'would-remove'],
      [`snapshots/${id}/mongo.archive.zst.age`, false, 'keep'],
    ]);
    const text = await runCli(['prune', '-c', config]);
    expect(text.stdout).toMatch(new RegExp(`would remove\\s+unfinished upload of snapshots/${id}/redis\\.rdb\\.zst\\.age \\(redis\\.rdb\\.zst\\.age\\.partial-0a0b0c0d\\)`));
    expect(text.stdout).not.toContain('mongo.archive');
    expect(text.stdout).toContain('Would remove 1 unfinished upload(s) older than 1d (4.0 KiB).');
    const verbose = await runCli(['prune', '-c', config, '--verbose']);
    expect(verbose.stdout).toMatch(/keep \(young\)\s+unfinished upload of .*mongo\.archive\.zst\.age/);
    expect((await readdir(dir)).filter((n) => n.includes('.partial-'))).toHaveLength(2);
  });

  it('--confirm removes the stale one, keeps the young one and every snapshot object', async () => {
    const before = (await readdir(dir)).filter((n) => !n.includes('.partial-')).sort();
    const res = await runCli(['prune', '-c', config, '--confirm', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const u = JSON.parse(res.stdout).unfinished_uploads;
    expect(u.totals).toEqual({ stale: 1, removed: 1, failed: 0, bytes: 4096 });
    expect(u.uploads.find((x: any) => x.stale).action).toBe('removed');
    expect((await readdir(dir)).sort()).toEqual([...before, 'mongo.archive.zst.age.partial-01020304'].sort());
    const again = await runCli(['prune', '-c', config, '--confirm']);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('unfinished upload of');
  });
});

describe('pruneSnapshots', () => {
  /** A LocalStore that records every delete. */
  function recording(root: string): { store: Store; deletes: string[] } {
    const inner = new LocalStore(root);
    const deletes: string[] = [];
    const store = Object.create(inner) as Store;
    store.delete = async (key, opts) => {
      deletes.push(key);
      return inner.delete(key, opts);
    };
    return { store, deletes };
  }

  it('deletes the manifest first, so a half-pruned snapshot reads as incomplete', async () => {
    const root = path.join(ws.dir, 'store-order');
    const old = await cloneSnapshot(root, seed.full, ago(5 * DAY));
    await cloneSnapshot(root, seed.full, ago(DAY));
    await drillReport(root, old, 'failed');
    const { store, deletes } = recording(root);
    const removed: string[] = [];
    const result = await pruneSnapshots({
      store,
      policy: { keepLast: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: '1d' },
      confirm: true,
      progress: { removed: (id) => removed.push(id) },
    });
    expect(removed).toEqual([old]);
    expect(deletes[0]).toBe(`snapshots/${old}/manifest.json`);
    expect(deletes.slice(1, 3).sort()).toEqual([`snapshots/${old}/certs.tar.zst.age`, `snapshots/${old}/config.tar.zst.age`]);
    expect(deletes.slice(3).every((k) => k.startsWith(`reports/${old}/`))).toBe(true);
    expect(deletes).toHaveLength(5);
    const entry = result.snapshots.find((e) => e.id === old)!;
    expect(entry.removal).toMatchObject({ status: 'removed', objects: 5, locked: [] });
    // Nothing of it is left, not even an empty folder.
    expect(await readdir(path.join(root, 'snapshots'))).toHaveLength(1);
    expect(await readdir(path.join(root, 'reports')).catch(() => [])).toEqual([]);
  });

  it('a store failure on one snapshot is reported and the others are still pruned', async () => {
    const root = path.join(ws.dir, 'store-fail');
    const a = await cloneSnapshot(root, seed.full, ago(6 * DAY));
    const b = await cloneSnapshot(root, seed.full, ago(5 * DAY));
    await cloneSnapshot(root, seed.full, ago(DAY));
    const inner = new LocalStore(root);
    const store = Object.create(inner) as Store;
    store.delete = async (key, opts) => {
      if (key.startsWith(`snapshots/${a}/`)) throw new Error(`disk on fire while deleting ${key}`);
      return inner.delete(key, opts);
    };
    const result = await pruneSnapshots({
      store,
      policy: { keepLast: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: '1d' },
      confirm: true,
    });
    expect(result.snapshots.find((e) => e.id === a)!.removal).toMatchObject({ status: 'failed', error: expect.stringContaining('disk on fire') });
    expect(result.snapshots.find((e) => e.id === b)!.removal).toMatchObject({ status: 'removed' });
    expect(result.totals).toMatchObject({ removed: 1, failed: 1 });
  });
});

describe('tykdr prune --help', () => {
  it('has examples, --config, --json and the exit-code table', async () => {
    const res = await runCli(['prune', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('EXAMPLES');
    expect(res.stdout).toContain('--config');
    expect(res.stdout).toContain('--json');
    for (const e of EXIT_CODE_TABLE) expect(res.stdout).toContain(e.meaning.slice(0, 40));
  });
});

describe('kill -9 of prune --confirm at seeded random points', () => {
  it('never leaves a snapshot with a manifest and missing objects; the kept ones stay whole; a rerun finishes the prune', async () => {
    const root = path.join(ws.dir, 'store-kill');
    const cfg = await ws.writeConfig('kill.yaml', (await readFile(path.join(ws.dir, 'tykdr.yaml'), 'utf8')).replace('path: ./store', `path: ${root}`));
    const args = ['prune', '--confirm', '-c', cfg];
    let kept: string[] = [];
    // 40 snapshots of 2 to 41 days, each with an old failed drill report: keepLast 2 keeps the two newest.
    const reset = async () => {
      await rm(root, { recursive: true, force: true });
      const ids: string[] = [];
      for (let d = 2; d < 42; d++) {
        const id = await cloneSnapshot(root, seed.full, ago(d * DAY));
        await drillReport(root, id, 'failed');
        ids.push(id);
      }
      kept = ids.slice(0, 2);
    };
    /** Every snapshot that has a manifest has every object it lists, of the listed size. */
    const wholeOrIncomplete = async (where: string) => {
      for (const id of await readdir(path.join(root, 'snapshots'))) {
        const dir = path.join(root, 'snapshots', id);
        const manifest = await readFile(path.join(dir, 'manifest.json'), 'utf8').catch(() => null);
        if (manifest === null) continue;
        for (const c of Object.values(JSON.parse(manifest).components) as Array<{ artifact: { name: string; stored_bytes: number } }>) {
          const size = await stat(path.join(dir, c.artifact.name)).then((st) => st.size, () => -1);
          expect(size, `${where}: snapshot ${id} has its manifest but ${c.artifact.name} is ${size < 0 ? 'missing' : `${size} bytes`}`).toBe(c.artifact.stored_bytes);
        }
      }
    };
    const atSpawn = { probe: async () => true };
    // Half the kills timed from the spawn, half from the first "removing <id>..." line (the deleting phase).
    const triggers = [atSpawn, { mark: 'removing ' }];
    const windows: number[] = [];
    for (const t of triggers) {
      await reset();
      const full = await runAndKill(args, { cwd: ws.dir }, t, 3_600_000);
      expect(full.code, full.stdout + full.stderr).toBe(0);
      expect(full.triggeredAt, full.stderr).not.toBeNull();
      expect((await readdir(path.join(root, 'snapshots'))).sort()).toEqual([...kept].sort());
      windows.push(full.endedAt - full.triggeredAt!);
    }
    const random = mulberry32(20261207);
    const seen = { killed: 0, halfway: 0, emptied: 0 };
    for (let i = 0; i < 8; i++) {
      await reset();
      const at = Math.round(random() * windows[i % 2]!);
      const where = `kill ${i} (+${at} ms ${i % 2 ? 'from the first removal' : 'from the spawn'})`;
      const run = await runAndKill(args, { cwd: ws.dir }, triggers[i % 2]!, at);
      if (run.killed) seen.killed++;
      else expect(run.code, `${where}\n${run.stdout}${run.stderr}`).toBe(0);
      const left = await readdir(path.join(root, 'snapshots'));
      if (left.length > kept.length && left.length < 40) seen.halfway++;
      await wholeOrIncomplete(where);
      for (const id of kept) expect(left, `${where}: a kept snapshot went`).toContain(id);
      const again = await runAndKill(args, { cwd: ws.dir }, atSpawn, 3_600_000);
      expect(again.code, `${where}: the rerun\n${again.stdout}${again.stderr}`).toBe(0);
      // A kill between a snapshot's last file and its folder leaves the folder, empty: no snapshot, and an unfinished
      // write the store lists, which a prune removes once older than retention.incompleteGrace (as partial files).
      const after = await readdir(path.join(root, 'snapshots'));
      const emptied: string[] = [];
      for (const id of after) if (!kept.includes(id) && (await readdir(path.join(root, 'snapshots', id))).length === 0) emptied.push(id);
      expect(after.filter((id) => !emptied.includes(id)).sort(), `${where}: after the rerun`).toEqual([...kept].sort());
      if (emptied.length > 0) {
        const unfinished: string[] = [];
        for await (const u of new LocalStore(root).listUnfinished('snapshots/')) unfinished.push(`${u.key} ${u.id}`);
        expect(unfinished, where).toEqual(expect.arrayContaining(emptied.map((id) => `snapshots/${id}/ (empty folder)`)));
        seen.emptied += emptied.length;
      }
    }
    console.log(`prune kill -9 over 8 seeded points: ${JSON.stringify(seen)}`);
    expect(seen.killed).toBeGreaterThan(0);
  }, 300_000);
});
