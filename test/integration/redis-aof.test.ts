import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { create as createTar, extract as extractTar, list as listTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AofSource } from '../../src/backends/redis/source/aof-source.js';
import { restoreRedis } from '../../src/backends/redis/target/restore-redis.js';
import { TykdrError } from '../../src/core/errors.js';
import type { CheckResult } from '../../src/core/restore/types.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { redisComponent, redisContents, seedTypes, takeSnapshot } from '../helpers/redis-cluster.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { waitFor } from '../helpers/wait.js';
import { makeWorkspace } from '../helpers/workspace.js';
import { useCleanups } from '../helpers/cleanups.js';

const execFileP = promisify(execFile);
const ALL_CHECKS = ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl', 'redis-replicas'];
const { cleanups, tempDir } = useCleanups();

async function aofServer(extra: string[] = []): Promise<RedisServer> {
  const s = await startRedis({ args: ['--appendonly', 'yes', ...extra] });
  cleanups.push(() => s.stop());
  return s;
}

function client(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  cleanups.push(async () => r.disconnect());
  return r;
}

async function rejects(p: Promise<unknown>): Promise<TykdrError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TykdrError);
  return err as TykdrError;
}

const byName = (checks: CheckResult[]) => Object.fromEntries(checks.map((c) => [c.name, c]));
const info = async (s: { cli: (...a: string[]) => Promise<string> }, field: string) => new RegExp(`${field}:(\\S+)`).exec(await s.cli('INFO', 'persistence'))?.[1];
const percentage = async (port: number) => (await execFileP('redis-cli', ['-p', String(port), 'CONFIG', 'GET', 'auto-aof-rewrite-percentage'])).stdout.trim().split('\n')[1];

/**
 * Writes in transactions until stopped: `SET seq:<n>` and `INCR counter` in one MULTI/EXEC, so any
 * consistent cut of the AOF holds seq:1..counter exactly. Also grows a list, to make the AOF grow.
 */
function backgroundWriter(port: number): { written: () => number; stop: () => Promise<number> } {
  const r = client(port);
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      const batch = [];
      for (let i = 0; i < 50; i++) {
        n++;
        batch.push(r.multi().set(`seq:${n}`, `v${n}-${'p'.repeat(200)}`).incr('counter').exec());
      }
      await Promise.all(batch);
    }
  })();
  return {
    written: () => n,
    stop: async () => {
      running = false;
      await loop;
      return n;
    },
  };
}

/** Consumes a stream slowly (so a copy spans time: the delay is the point), calling `during` before each chunk is taken. */
function slowSink(delayMs: number, during?: () => Promise<void>): Writable {
  return new Writable({
    highWaterMark: 1,
    write(_chunk, _enc, cb) {
      const go = async () => {
        await during?.();
        await new Promise((r) => setTimeout(r, delayMs));
      };
      go().then(() => cb(), cb);
    },
  });
}

/** A daemonized redis-server managed only through shell commands, as a file-mode restore sees it. */
async function daemon(args = ''): Promise<{ port: number; dir: string; start: string; stop: string; pid: () => Promise<number> }> {
  const dir = await tempDir('tykdr-aof-daemon-');
  const port = await freePort();
  const start = `redis-server --port ${port} --bind 127.0.0.1 --dir ${dir} --appendonly yes --daemonize yes --pidfile ${dir}/redis.pid --logfile ${dir}/redis.log --save '' ${args}`;
  const stop = `redis-cli -p ${port} shutdown nosave`;
  const pid = async () => Number((await readFile(path.join(dir, 'redis.pid'), 'utf8')).trim());
  await execFileP('sh', ['-c', start]);
  cleanups.push(async () => {
    const p = await pid().catch(() => 0);
    if (p > 0) process.kill(p, 'SIGKILL');
  });
  await waitFor(async () => (await execFileP('redis-cli', ['-p', String(port), 'ping']).then((o) => o.stdout.trim(), () => '')) === 'PONG', {
    timeoutMs: 10_000,
    what: `the daemonized redis-server on port ${port} to answer PING`,
    detail: () => readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => ''),
  });
  return { port, dir, start, stop, pid };
}

const cli = (port: number, ...args: string[]) => execFileP('redis-cli', ['-p', String(port), ...args]).then((o) => o.stdout.trim());

describe('mode aof: backup', () => {
  it('copies the AOF folder while writes happen, with automatic rewrites held off and the setting put back', async () => {
    // A tiny rewrite threshold: without the guard Redis would rewrite the AOF several times a second.
    const s = await aofServer(['--auto-aof-rewrite-percentage', '10', '--auto-aof-rewrite-min-size', '65536']);
    await seedTykRedis(s.port, { sessions: 2000 });
    await seedTypes(s.port);
    const writer = backgroundWriter(s.port);
    // Rewrites do happen before the backup (the writer grows the AOF past the tiny threshold).
    await waitFor(async () => writer.written() > 0 && Number(await info(s, 'aof_rewrites')) > 0, { timeoutMs: 10_000, what: 'an automatic AOF rewrite while the writer writes' });
    const source = new AofSource(redisComponent(`port: ${s.port}\nmode: aof`));
    await source.check();
    const artifact = await source.open();
    const dir = await tempDir('tykdr-aof-copy-');
    const tarFile = path.join(dir, 'redis.aof');
    await pipeline(artifact.stream, createWriteStream(tarFile));
    // The copy is over: the setting is back while the writer keeps writing.
    expect(await percentage(s.port)).toBe('10');
    const facts = (await artifact.finish()).source as any;
    const n = await writer.stop();
    expect(facts).toMatchObject({ transfer: 'aof-files', rdb_version: 10, rdb_checksum: 'ok', rewrite_guard: { auto_aof_rewrite_percentage: '10' } });
    expect(facts.aof.appenddirname).toBe('appendonlydir');
    expect(facts.aof.base_format).toBe('rdb');
    expect(facts.aof.files.map((f: any) => f.kind)).toEqual(['manifest', 'base', 'incr']);
    expect(facts.aof.incr_commands).toBeGreaterThan(0);
    expect(facts.databases['0'].keys).toBeGreaterThan(2000);
    expect(facts.aof.aof_current_size_before).toBeLessThanOrEqual(facts.aof.aof_current_size_after);
    const entries: Array<{ path: string; size: number }> = [];
    await listTar({ file: tarFile, onReadEntry: (e) => void entries.push({ path: e.path, size: e.size ?? 0 }) });
    expect(entries).toEqual(facts.aof.files.map((f: any) => ({ path: `appendonlydir/${f.name}`, size: f.bytes })));
    expect(n).toBeGreaterThan(0);
  });

  it('holds rewrites off for the whole copy, even a slow one, and rewrites resume after it', async () => {
    const s = await aofServer(['--auto-aof-rewrite-percentage', '10', '--auto-aof-rewrite-min-size', '65536']);
    await seedTykRedis(s.port, { sessions: 20_000 });
    const writer = backgroundWriter(s.port);
    // The writer is writing and automatic rewrites are happening before the backup starts.
    await waitFor(async () => writer.written() > 0 && Number(await info(s, 'aof_rewrites')) > 0, { timeoutMs: 10_000, what: 'an automatic AOF rewrite while the writer writes' });
    const artifact = await new AofSource(redisComponent(`port: ${s.port}\nmode: aof`)).open();
    const seen: Array<{ setting: string; rewrites: number; inProgress: string }> = [];
    // One transaction: the setting and the rewrite state as of the same instant.
    const r = client(s.port);
    const probe = async () => {
      const [[, conf], [, pers]] = (await r.multi().config('GET', 'auto-aof-rewrite-percentage').info('persistence').exec()) as [[null, string[]], [null, string]];
      seen.push({ setting: conf[1]!, rewrites: Number(/aof_rewrites:(\d+)/.exec(pers)![1]), inProgress: /aof_rewrite_in_progress:(\d)/.exec(pers)![1]! });
    };
    await pipeline(artifact.stream, slowSink(100, probe));
    const facts = (await artifact.finish()).source as any;
    const during = seen.filter((p) => p.setting === '0');
    // While the files were read (several hundred ms, with the writer growing the AOF far past the threshold): no rewrite.
    expect(during.length).toBeGreaterThan(3);
    for (const p of during) expect(p).toEqual({ setting: '0', rewrites: during[0]!.rewrites, inProgress: '0' });
    expect(await percentage(s.port)).toBe('10');
    await waitFor(async () => Number(await info(s, 'aof_rewrites')) > during[0]!.rewrites, { timeoutMs: 10_000, what: 'an automatic AOF rewrite after the copy' });
    await writer.stop();
    expect(facts.rewrite_guard.auto_aof_rewrite_percentage).toBe('10');
  });

  it('waits for a rewrite that is running when the backup starts', async () => {
    const s = await aofServer();
    await seedTykRedis(s.port, { sessions: 1500 });
    // Slow the rewrite down (microseconds per key) so it is still running when the backup begins.
    await s.cli('CONFIG', 'SET', 'rdb-key-save-delay', '1000');
    await s.cli('BGREWRITEAOF');
    expect(await info(s, 'aof_rewrite_in_progress')).toBe('1');
    const snap = await takeSnapshot(new AofSource(redisComponent(`port: ${s.port}\nmode: aof`)));
    expect(snap.facts.rewrite_guard).toMatchObject({ waited_for_rewrite: true, auto_aof_rewrite_percentage: '100' });
    expect((snap.facts.rewrite_guard as { waited_ms: number }).waited_ms).toBeGreaterThan(200);
    expect((snap.facts.aof as { base_seq: number }).base_seq).toBe(2); // the copy is of the rewritten AOF
    expect(await percentage(s.port)).toBe('100');
  });

  it('a dataDir holding another Redis\'s AOF is refused after the guard engaged, and the setting is put back', async () => {
    const s = await aofServer(['--auto-aof-rewrite-percentage', '42']);
    const other = await aofServer();
    await seedTykRedis(s.port, { sessions: 50 });
    await other.cli('SET', 'something', 'else');
    const fake = await tempDir('tykdr-aof-fake-');
    await cp(path.join(other.dir, 'appendonlydir'), path.join(fake, 'appendonlydir'), { recursive: true });
    const err = await rejects(new AofSource(redisComponent(`port: ${s.port}\nmode: aof\naof: { dataDir: ${fake} }`)).open());
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toMatch(new RegExp(`the AOF files in ${fake}/appendonlydir are not the ones Redis at 127\\.0\\.0\\.1:${s.port} writes: they hold \\d+ bytes, Redis reports aof_current_size \\d+`));
    expect(err.message).toContain(`(Redis's own dir is ${s.dir})`);
    expect(err.fix).toContain('aof.dataDir');
    expect(await percentage(s.port)).toBe('42');
  });

  it('an aborted copy puts the setting back', async () => {
    const s = await aofServer(['--auto-aof-rewrite-percentage', '55']);
    await seedTykRedis(s.port, { sessions: 5000 });
    const ac = new AbortController();
    const artifact = await new AofSource(redisComponent(`port: ${s.port}\nmode: aof`)).open(ac.signal);
    expect(await percentage(s.port)).toBe('0');
    const err = await pipeline(artifact.stream, slowSink(50, async () => ac.abort()), { signal: ac.signal }).then(() => null, (e: unknown) => e as Error);
    expect(err?.name).toBe('AbortError');
    await waitFor(async () => (await percentage(s.port)) === '55', { timeoutMs: 5000, what: 'auto-aof-rewrite-percentage to be put back to 55', detail: async () => `it is ${await percentage(s.port)}` });
  });

  it('refuses a Redis with AOF off, and a folder it cannot read, before changing anything', async () => {
    const off = await startRedis();
    cleanups.push(() => off.stop());
    const e1 = await rejects(new AofSource(redisComponent(`port: ${off.port}\nmode: aof`)).check());
    expect(e1.message).toBe(`AOF is disabled on 127.0.0.1:${off.port}; use mode: rdb`);
    expect(e1.kind).toBe('badInput');
    const s = await aofServer(['--auto-aof-rewrite-percentage', '77']);
    const e2 = await rejects(new AofSource(redisComponent(`port: ${s.port}\nmode: aof\naof: { dataDir: /nonexistent/redis }`)).open());
    expect(e2.kind).toBe('sourceUnreachable');
    expect(e2.message).toContain('cannot read the AOF folder: /nonexistent/redis/appendonlydir/appendonly.aof.manifest: ENOENT');
    expect(e2.message).toContain('tykdr must run where Redis\'s data directory is readable');
    expect(e2.fix).toContain('aof.dataDir');
    expect(await percentage(s.port)).toBe('77');
  });
});

describe('mode aof: restore', () => {
  let src: RedisServer;
  let snap: Awaited<ReturnType<typeof takeSnapshot>>;
  let expected: Map<string, { value: string; expireAt: number }>;

  beforeAll(async () => {
    src = await aofServer();
    await seedTykRedis(src.port, { sessions: 300 });
    await seedTykRedis(src.port, { sessions: 3, db: 5 });
    await seedTypes(src.port);
    // A rewrite, then more writes: the snapshot is a base plus a non-empty incremental file.
    await src.cli('BGREWRITEAOF');
    await waitFor(async () => (await info(src, 'aof_rewrite_in_progress')) === '0', { timeoutMs: 30_000, what: 'BGREWRITEAOF to finish' });
    const r = client(src.port);
    await r.multi().set('apikey-after-rewrite', 'x').hset('coprocess-data:after', 'a', '1').exec();
    await r.set('apikey-ttl-after-rewrite', 'y', 'PX', 7_200_000);
    snap = await takeSnapshot(new AofSource(redisComponent(`port: ${src.port}\nmode: aof`)));
    expected = await redisContents(src.port, [0, 5]);
  });

  const fileComponent = (d: { port: number; dir: string; start: string; stop: string }, extra = '') =>
    redisComponent(`port: ${d.port}\nmode: aof\nrestore:\n  mode: aof-file\n  dataDir: ${d.dir}\n  stopCommand: "${d.stop}"\n  startCommand: "${d.start}"\n  loadTimeout: 20s\n${extra}`);

  async function staged(): Promise<{ rdbFile: string; workDir: string }> {
    const dir = await tempDir('tykdr-aof-stage-');
    const rdbFile = path.join(dir, 'redis.aof');
    await cp(snap.file, rdbFile);
    return { rdbFile, workDir: path.join(dir, 'work') };
  }

  it('aof-file: stops Redis, keeps its AOF folder aside, places the snapshot, starts it, and every check passes', async () => {
    const d = await daemon();
    await cli(d.port, 'SET', 'apikey-old-data', 'old');
    const out = await restoreRedis({ component: fileComponent(d), manifest: snap.manifest, ...(await staged()), checks: ALL_CHECKS });
    const checks = byName(out.checks);
    for (const n of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl']) expect(checks[n]!.status, JSON.stringify(checks[n])).toBe('passed');
    expect(checks['redis-key-counts']!.evidence).toMatchObject({ comparison: 'exact' });
    expect(await redisContents(d.port, [0, 5])).toEqual(expected);
    expect(await cli(d.port, 'CONFIG', 'GET', 'appendonly')).toContain('yes');
    const aside = (await readdir(d.dir)).filter((n) => n.startsWith('appendonlydir.tykdr-'));
    expect(aside).toHaveLength(1);
    expect(aside[0]).toMatch(/^appendonlydir\.tykdr-\d{8}T\d{6}Z\.bak$/);
    expect(out.details).toMatchObject({ mode: 'aof-file', format: 'aof', appenddirname: 'appendonlydir', placed_by: 'rename', snapshot_rdb_version: 10 });
    expect(out.details.previous_aof_dir).toBe(path.join(d.dir, aside[0]!));
    // The old folder is intact: the old data is still in it.
    const oldDaemon = (await readdir(path.join(d.dir, aside[0]!))).filter((n) => n.endsWith('.manifest'));
    expect(oldDaemon).toEqual(['appendonly.aof.manifest']);
  });

  it('aof-file without a scratch redis-server: restores, compares counts with the INFO counts at backup time, and says why there is no sample', async () => {
    const d = await daemon();
    const out = await restoreRedis({ component: fileComponent(d, '  redisServer: /nonexistent/redis-server'), manifest: snap.manifest, ...(await staged()), checks: ALL_CHECKS });
    const checks = byName(out.checks);
    expect(checks['redis-key-counts']!.status, checks['redis-key-counts']!.detail).toBe('passed');
    expect(checks['redis-key-counts']!.detail).toMatch(/approximate: no scratch server could load the snapshot/);
    expect(checks['redis-key-counts']!.evidence).toMatchObject({ comparison: 'approximate (INFO keyspace at backup time)' });
    expect(checks['redis-sample']!.status).toBe('skipped');
    expect(checks['redis-sample']!.detail).toContain('/nonexistent/redis-server');
    expect((out.details.warnings as string[]).join()).toContain('redis-sample is skipped and redis-key-counts compares with the key counts Redis reported at backup time');
    expect(await redisContents(d.port, [0, 5])).toEqual(expected);
  });

  it('aof-file: puts the old AOF folder back and restarts Redis when the start command fails', async () => {
    const d = await daemon();
    await cli(d.port, 'SET', 'apikey-old-data', 'old');
    const marker = path.join(d.dir, 'failed-once');
    const flaky = { ...d, start: `if [ ! -f ${marker} ]; then touch ${marker}; echo 'cannot start: simulated' >&2; exit 3; fi; ${d.start}` };
    const err = await rejects(restoreRedis({ component: fileComponent(flaky), manifest: snap.manifest, ...(await staged()), checks: ALL_CHECKS }));
    expect(err.kind).toBe('targetError');
    expect(err.message).toContain('startCommand failed with exit code 3; it printed: cannot start: simulated');
    expect(err.message).toContain('Rolled back: the previous appendonlydir was put back and Redis at');
    expect(await cli(d.port, 'GET', 'apikey-old-data')).toBe('old');
    expect(await cli(d.port, 'DBSIZE')).toBe('1');
    expect((await readdir(d.dir)).filter((n) => n.includes('.tykdr-'))).toEqual([]);
  });

  it('refuses an aof-file restore into a Redis running without AOF, and an rdb-file restore of an AOF snapshot', async () => {
    const d = await daemon();
    await cli(d.port, 'CONFIG', 'SET', 'appendonly', 'no');
    await cli(d.port, 'SET', 'marker', '1');
    const e1 = await rejects(restoreRedis({ component: fileComponent(d), manifest: snap.manifest, ...(await staged()), checks: [] }));
    expect(e1.kind).toBe('targetError');
    expect(e1.message).toContain('runs with appendonly no (aof_enabled:0): on start it would ignore the restored AOF folder');
    expect(await cli(d.port, 'GET', 'marker')).toBe('1');
    const e2 = await rejects(
      restoreRedis({
        component: redisComponent(`port: ${d.port}\nrestore: { mode: rdb-file, dataDir: ${d.dir}, stopCommand: "true", startCommand: "true" }`),
        manifest: snap.manifest,
        ...(await staged()),
        checks: [],
      }),
    );
    expect(e2.kind).toBe('badInput');
    expect(e2.message).toContain('is rdb-file, but this snapshot of components.redis is an AOF folder (backup mode aof)');
    expect(e2.fix).toContain('aof-file');
  });

  it('a cut or damaged AOF artifact is an integrity error before the target is touched', async () => {
    const d = await daemon();
    await cli(d.port, 'SET', 'marker', '1');
    const pidBefore = await d.pid();
    const attempt = async (damage: (folder: string, s: { rdbFile: string }) => Promise<void>) => {
      const s = await staged();
      const work = await tempDir('tykdr-aof-damage-');
      await extractTar({ file: s.rdbFile, cwd: work });
      await damage(path.join(work, 'appendonlydir'), s);
      await rm(s.rdbFile);
      await createTar({ file: s.rdbFile, cwd: work }, ['appendonlydir']);
      return rejects(restoreRedis({ component: fileComponent(d), manifest: snap.manifest, ...s, checks: ALL_CHECKS }));
    };
    const cutIncr = await attempt(async (folder) => {
      const incr = (await readdir(folder)).find((n) => n.endsWith('.incr.aof'))!;
      const bytes = await readFile(path.join(folder, incr));
      await writeFile(path.join(folder, incr), bytes.subarray(0, bytes.length - 3));
    });
    expect(cutIncr.kind).toBe('integrityError');
    expect(cutIncr.message).toMatch(/appendonlydir\/appendonly\.aof\.\d+\.incr\.aof ends inside a command \(\d+ bytes after the last complete one\): it was cut short/);
    const noBase = await attempt(async (folder) => rm(path.join(folder, (await readdir(folder)).find((n) => n.includes('.base.'))!)));
    expect(noBase.message).toMatch(/lists appendonly\.aof\.\d+\.base\.rdb, missing from the artifact/);
    const badBase = await attempt(async (folder) => {
      const base = path.join(folder, (await readdir(folder)).find((n) => n.includes('.base.'))!);
      const bytes = await readFile(base);
      bytes[bytes.length - 20]! ^= 0xff;
      await writeFile(base, bytes);
    });
    expect(badBase.message).toMatch(/base\.rdb: RDB checksum mismatch|base\.rdb: .*not|base\.rdb/);
    const cutTar = await (async () => {
      const s = await staged();
      const bytes = await readFile(s.rdbFile);
      await writeFile(s.rdbFile, bytes.subarray(0, bytes.length - 1500));
      return rejects(restoreRedis({ component: fileComponent(d), manifest: snap.manifest, ...s, checks: ALL_CHECKS }));
    })();
    expect(cutTar.message).toContain('the AOF artifact is not a readable tar');
    for (const e of [cutIncr, noBase, badBase, cutTar]) expect(e.kind).toBe('integrityError');
    expect(await d.pid()).toBe(pidBefore);
    expect(await cli(d.port, 'GET', 'marker')).toBe('1');
  });

  it('live: an AOF snapshot is loaded in a scratch server and copied into a running Redis without AOF', async () => {
    const target = await startRedis();
    cleanups.push(() => target.stop());
    const out = await restoreRedis({
      component: redisComponent(`port: ${src.port}\nmode: aof\nrestore: { target: { port: ${target.port} }, classes: [must, should, quota, ephemeral, analytics, mdcb, other] }`),
      manifest: snap.manifest,
      ...(await staged()),
      checks: ALL_CHECKS,
    });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).not.toBe('failed');
    expect(byName(out.checks)['redis-key-counts']!.status).toBe('passed');
    // Strings went in by SET (decoded from the scratch server's DUMP), the other types by RESTORE.
    const strings = [...expected.values()].filter((v) => v.value.startsWith('string:')).length;
    expect(out.details.keys_written_with_set).toBeGreaterThan(strings / 2); // less any that expired since the snapshot
    expect(out.details.keys_written_with_set).toBeLessThanOrEqual(strings);
    expect(out.details.set_not_used).toBeUndefined();
    const got = await redisContents(target.port, [0, 5]);
    for (const [k, v] of expected) if (v.expireAt === -1 || v.expireAt > Date.now() + 5000) expect(got.get(k), k).toEqual(v);
  });
});

describe('tykdr backup and restore with mode: aof (CLI)', () => {
  it('backs up the AOF of a running Redis with writes going on, and restores it with the redis plan (aof-file)', async () => {
    const ws = await makeWorkspace();
    cleanups.push(() => ws.cleanup());
    const d = await daemon('--auto-aof-rewrite-percentage 25 --auto-aof-rewrite-min-size 65536');
    await seedTykRedis(d.port, { sessions: 500 });
    const writer = backgroundWriter(d.port);
    const file = await ws.writeConfig(
      'aof.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${d.port}
    mode: aof
    restore:
      mode: aof-file
      dataDir: ${d.dir}
      stopCommand: "${d.stop}"
      startCommand: "${d.start}"
      loadTimeout: 30s
restore: { reportDir: ./reports }
`,
    );
    const b = await runCli(['backup', '-c', file, '--json']);
    await writer.stop();
    expect(b.code, b.stderr).toBe(0);
    const id = JSON.parse(b.stdout).id as string;
    const manifest = JSON.parse(await readFile(path.join(ws.storeDir, 'snapshots', id, 'manifest.json'), 'utf8'));
    expect(manifest.components.redis.artifact).toMatchObject({ name: 'redis.aof.zst.age', format: 'aof' });
    expect(await percentage(d.port)).toBe('25');

    await cli(d.port, 'FLUSHALL');
    await cli(d.port, 'SET', 'written-after-the-disaster', '1');
    const r = await runCli(['restore', '--plan', 'redis', '-c', file, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout).report;
    const checks = Object.fromEntries(report.steps.flatMap((s: any) => s.checks.map((c: any) => [c.name, c.status])));
    for (const c of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl']) expect(checks[c], c).toBe('passed');
    // The copy is a consistent cut of the transactions: seq:1..counter, nothing more, nothing less.
    const counter = Number(await cli(d.port, 'GET', 'counter'));
    expect(counter).toBeGreaterThan(0);
    const seqs = (await cli(d.port, '--scan', '--pattern', 'seq:*')).split('\n').filter(Boolean);
    expect(seqs.length).toBe(counter);
    expect(await cli(d.port, 'EXISTS', 'written-after-the-disaster')).toBe('0');
    expect(await cli(d.port, 'EXISTS', 'apikey-canary0000000000000000000000000')).toBe('1');
    expect((await stat(path.join(d.dir, 'appendonlydir'))).isDirectory()).toBe(true);
  });
});
