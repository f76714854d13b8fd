import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useCleanups } from '../helpers/cleanups.js';
import { eventually, mulberry32, processesUsing, runAndKill, type KillTrigger } from '../helpers/crash.js';
import { freePort } from '../helpers/net.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * kill -9 of `tykdr restore` in rdb-file mode (Redis stopped, dump.rdb swapped, Redis started) and of a
 * files restore (config tarball extracted over the roots), at 10 seeded random points each. Half of the
 * points are timed from the step's first progress line, half from a phase seen from outside (the target
 * Redis going down; the first file set aside), so they land in the writing phase too. After each kill:
 * the target is untouched, whole, or the dry run says PARTIAL (from the journal); `--resume` makes it
 * identical to the snapshot (DUMP and TTL of every key; bytes, modes and links of every file); no process
 * of the killed run remains, and after the next run no staged plaintext does.
 */
const { cleanups, tempDir } = useCleanups();
const execFileP = promisify(execFile);
const SEED = 20261206;
const KILLS = 10;

let ws: Workspace;
let source: RedisServer;
let staging: string;
let configFile: string;
let filesPlan: string;
let root: string;
const target = { port: 0, dir: '', start: '', stop: '' };
let snapshotRedis: Map<string, string>;
let snapshotTree: Map<string, string>;

const cli = (args: string[]) => runCli([...args, '--config', configFile], { cwd: ws.dir });

/** Every key of db 0 with its DUMP payload and whether it has a TTL (absolute expiries are compared by the whole TTL within a second). */
async function redisValues(port: number): Promise<Map<string, string>> {
  const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await r.connect();
  const out = new Map<string, string>();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const p = r.pipeline();
      for (const k of keys) p.dump(k).pexpiretime(k);
      const res = (await p.exec())!;
      keys.forEach((k, i) => {
        const dump = (res[2 * i]![1] as Buffer | null)?.toString('hex') ?? '';
        const at = Number(res[2 * i + 1]![1]);
        out.set(k, `${dump}/${at < 0 ? at : Math.round(at / 1000)}`);
      });
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return out;
}

const same = (a: Map<string, string>, b: Map<string, string>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function targetUp(): Promise<boolean> {
  return (await execFileP('redis-cli', ['-p', String(target.port), 'ping']).then((o) => o.stdout.trim(), () => '')) === 'PONG';
}

/** Every entry under `dir` (files set aside by restores left out): type, mode and SHA-256 or link target. */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const n of (await readdir(d)).sort()) {
      if (n.includes('.tykdr-aside-')) continue;
      const p = path.join(d, n);
      const st = await lstat(p);
      const rel = path.relative(dir, p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(rel, `link ${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        await walk(p);
      } else out.set(rel, `file ${mode} ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
    }
  };
  await walk(dir);
  return out;
}

/** The config tree: 120 files of 32 KB (random unless `old`), two folders with their own modes, a link. */
async function writeTree(dir: string, variant: 'snapshot' | 'old'): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'apps'), { recursive: true });
  await mkdir(path.join(dir, 'policies'), { recursive: true });
  for (let i = 0; i < 120; i++) {
    const sub = i % 3 === 0 ? 'apps' : i % 3 === 1 ? 'policies' : '';
    const file = path.join(dir, sub, `f${i}.json`);
    await writeFile(file, variant === 'old' ? `old ${i}` : randomBytes(32 * 1024));
    await chmod(file, variant === 'old' ? 0o644 : i % 2 ? 0o600 : 0o640);
  }
  await chmod(path.join(dir, 'policies'), variant === 'old' ? 0o755 : 0o750);
  await symlink(variant === 'old' ? 'apps/f3.json' : 'apps/f0.json', path.join(dir, 'current'));
}

beforeAll(async () => {
  [ws, source] = await Promise.all([makeWorkspace(), startRedis()]);
  cleanups.push(() => ws.cleanup(), () => source.stop());
  staging = path.join(ws.dir, 'staging');
  root = path.join(await tempDir('tykdr-crash-files-'), 'gateway');

  // Source data: Tyk keys without short TTLs (so "whole" does not move while the test runs).
  await seedTykRedis(source.port, { sessions: 8_000 });
  const r = new Redis({ port: source.port, lazyConnect: true });
  await r.connect();
  for (const k of await r.keys('*')) {
    const ttl = await r.pttl(k);
    if (ttl >= 0 && ttl < 3_600_000) await r.del(k);
  }
  r.disconnect();
  await writeTree(root, 'snapshot');

  // The target: a daemonized redis-server managed only through shell commands, as rdb-file mode sees it.
  target.port = await freePort();
  target.dir = await tempDir('tykdr-crash-target-');
  target.start = `redis-server --port ${target.port} --bind 127.0.0.1 --dir ${target.dir} --dbfilename dump.rdb --appendonly no --save '' --daemonize yes --pidfile ${target.dir}/redis.pid --logfile ${target.dir}/redis.log`;
  target.stop = `redis-cli -p ${target.port} shutdown nosave`;
  await execFileP('sh', ['-c', target.start]);
  cleanups.push(async () => {
    const pid = Number((await readFile(path.join(target.dir, 'redis.pid'), 'utf8').catch(() => '0')).trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
  });
  await eventually('the target Redis to answer', targetUp);

  configFile = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    restore:
      mode: rdb-file
      target: { host: 127.0.0.1, port: ${target.port} }
      dataDir: ${target.dir}
      stopCommand: "${target.stop}"
      startCommand: "${target.start}"
      loadTimeout: 30s
      sample: 20
  config: { kind: files, roots: [${root}], role: gateway }
restore: { stagingDir: ${staging}, reportDir: ./reports }
# The test runs longer than the default RPOs: objectives are not what it checks.
tiers: { critical: { rto: 1h, rpo: 24h }, important: { rto: 1h, rpo: 24h } }
`,
  );
  filesPlan = path.join(ws.dir, 'files-plan.yaml');
  await writeFile(
    filesPlan,
    `version: 1
name: files-only
description: The gateway's files only.
steps:
  - id: gateway
    component: gateway
    action: restore
    verify: [files-restored]
    timeout: 5m
    on_error: stop
`,
  );
  const b = await cli(['backup']);
  expect(b.code, b.stderr).toBe(0);
  snapshotRedis = await redisValues(source.port);
  snapshotTree = await tree(root);
}, 180_000);

/** After a kill (and its resume, if any): nothing of the killed run runs, no staged plaintext is left. */
async function expectNothingLeft(what: string): Promise<void> {
  await eventually(`no process using ${staging}`, async () => (await processesUsing(staging)).length === 0);
  const left = (await readdir(staging).catch(() => [] as string[])).filter((n) => n.startsWith('tykdr-restore-'));
  const owners = await Promise.all(left.map((n) => readFile(path.join(staging, n, '.tykdr-owner.json'), 'utf8').catch((e: Error) => `no owner file (${e.message})`)));
  const inside = await Promise.all(left.map((n) => readdir(path.join(staging, n)).catch(() => [] as string[])));
  expect(left, `staged folders left after ${what}: ${left.map((n, i) => `${n} owner ${owners[i]} holding [${inside[i]!.join(', ')}]`).join('; ')}`).toEqual([]);
}

const journals = async () => (await readdir(path.join(staging, 'tykdr-journal')).catch(() => [] as string[])).filter((j) => j.endsWith('.json'));

/**
 * The shared harness: a calibration run measures how long each trigger's window lasts, then KILLS runs are
 * killed at seeded points in those windows. `classify` judges the target after a kill; `isWhole` after a resume.
 */
async function killAtRandomPoints(o: {
  args: string[];
  reset: () => Promise<void>;
  triggers: [KillTrigger, KillTrigger];
  classify: () => Promise<'untouched' | 'whole' | 'partial'>;
  isWhole: () => Promise<boolean>;
}): Promise<Record<string, number>> {
  const windows: number[] = [];
  for (const t of o.triggers) {
    await o.reset();
    const full = await runAndKill([...o.args, '--config', configFile], { cwd: ws.dir }, t, 3_600_000);
    expect(full.code, full.stderr).toBe(0);
    expect(full.triggeredAt, `calibration: the trigger never fired\n${full.stderr}`).not.toBeNull();
    windows.push(full.endedAt - full.triggeredAt!);
    expect(await o.isWhole()).toBe(true);
  }
  const random = mulberry32(SEED);
  const seen: Record<string, number> = { untouched: 0, whole: 0, partial: 0, killed: 0 };
  for (let i = 0; i < KILLS; i++) {
    await o.reset();
    const which = i % 2;
    const at = Math.round(random() * windows[which]!);
    const where = `kill ${i} (${which === 0 ? 'from the step start' : 'from the write phase'} + ${at} ms)`;
    const run = await runAndKill([...o.args, '--config', configFile], { cwd: ws.dir }, o.triggers[which]!, at);
    if (run.killed) seen.killed!++;
    else expect(run.code, `${where} came after the end\n${run.stderr}`).toBe(0);
    await eventually(`no process using ${staging} after ${where}`, async () => (await processesUsing(staging)).length === 0);

    const state = await o.classify();
    seen[state]!++;
    const left = await journals();
    if (state === 'partial') {
      expect(left.length, `${where} left a partial target and no journal`).toBeGreaterThan(0);
      const dry = await cli([...o.args.filter((a) => a !== '--yes'), '--dry-run']);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout, where).toMatch(/PARTIAL: restore \S+ of snapshot \S+ \(plan .*\) was killed during step \S+; targets may be partial: /);
    }
    if (left.length > 0) {
      const journal = JSON.parse(await readFile(path.join(staging, 'tykdr-journal', left[0]!), 'utf8')) as { incident_at: string };
      const resumed = await cli(['restore', '--resume', '--json']);
      expect(resumed.code, `${where}: --resume\n${resumed.stdout}\n${resumed.stderr}`).toBe(0);
      // The same restore: RTO and RPO count from the killed run's incident time.
      expect(JSON.parse(resumed.stdout).report.incident_at).toBe(journal.incident_at);
      expect(await o.isWhole(), `${where}: --resume did not restore the snapshot`).toBe(true);
      expect(await journals()).toEqual([]);
    } else {
      // No journal: nothing was started that needs finishing. The next run sweeps what the killed one staged.
      const again = await cli(o.args);
      expect(again.code, again.stderr).toBe(0);
      expect(await o.isWhole()).toBe(true);
    }
    await expectNothingLeft(where);
  }
  return seen;
}

describe('kill -9 of a restore at seeded random points', () => {
  it(`rdb-file mode: ${KILLS} kills; the target is untouched, whole or reported partial, and --resume finishes it`, async () => {
    let old = new Map<string, string>();
    const reset = async () => {
      if (!(await targetUp())) {
        await execFileP('sh', ['-c', target.start]);
        await eventually('the target Redis to answer', targetUp);
      }
      const r = new Redis({ port: target.port, lazyConnect: true });
      await r.connect();
      await r.flushall();
      const keys = [...snapshotRedis.keys()];
      for (let i = 0; i < keys.length; i += 2000) {
        const p = r.pipeline();
        for (const k of keys.slice(i, i + 2000)) p.set(k, `old-${k}`);
        await p.exec();
      }
      await r.save();
      r.disconnect();
      for (const n of await readdir(target.dir)) if (n.includes('.tykdr-')) await rm(path.join(target.dir, n), { recursive: true, force: true });
      old = await redisValues(target.port);
    };
    const seen = await killAtRandomPoints({
      args: ['restore', '--plan', 'redis', '--yes'],
      reset,
      triggers: [{ mark: 'restoring redis (redis)' }, { probe: async () => !(await accepts(target.port)) }],
      classify: async () => {
        if (!(await targetUp())) return 'partial';
        const now = await redisValues(target.port);
        return same(now, old) ? 'untouched' : same(now, snapshotRedis) ? 'whole' : 'partial';
      },
      isWhole: async () => (await targetUp()) && same(await redisValues(target.port), snapshotRedis),
    });
    console.log(`rdb-file kill -9 outcomes over ${KILLS} seeded points: ${JSON.stringify(seen)}`);
    expect(seen.killed, JSON.stringify(seen)).toBeGreaterThan(0);
  }, 600_000);

  it(`files: ${KILLS} kills; the roots are untouched, whole or reported partial, and --resume finishes them byte for byte`, async () => {
    const reset = () => writeTree(root, 'old');
    await reset();
    const old = await tree(root);
    const seen = await killAtRandomPoints({
      args: ['restore', '--plan', filesPlan, '--yes'],
      reset,
      triggers: [
        { mark: 'restoring config (files)' },
        { probe: async () => (await readdir(path.join(root, 'apps')).catch(() => [] as string[])).some((n) => n.includes('.tykdr-aside-')) },
      ],
      classify: async () => {
        const now = await tree(root);
        return same(now, old) ? 'untouched' : same(now, snapshotTree) ? 'whole' : 'partial';
      },
      isWhole: async () => same(await tree(root), snapshotTree),
    });
    console.log(`files kill -9 outcomes over ${KILLS} seeded points: ${JSON.stringify(seen)}`);
    expect(seen.killed, JSON.stringify(seen)).toBeGreaterThan(0);
    // What the restores replaced is kept aside, never lost: every old file's bytes are in some aside copy.
    const asides = (await readdir(path.join(root, 'apps'))).filter((n) => n.includes('.tykdr-aside-'));
    const oldBytes = new Set(await Promise.all(asides.map(async (n) => (await readFile(path.join(root, 'apps', n))).toString())));
    expect(oldBytes.has('old 0')).toBe(true);
  }, 600_000);
});
