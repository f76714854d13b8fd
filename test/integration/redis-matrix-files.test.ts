import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCleanups } from '../helpers/cleanups.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { diffKeyspaces, fillEveryEncoding, readKeyspace, type KeyState } from '../helpers/redis-keyspace.js';
import { SERVER_BINARIES, SERVER_KINDS, startRedis, type RedisServer, type ServerKind } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * The server matrix for the restore paths that are not a live copy of an RDB (redis-matrix.test.ts has
 * those): backup mode aof (Redis 6.2's single file, 7.0's and Valkey's multi-part folder) restored live (through a scratch server of a fitting release) and with aof-file,
 * and backup mode rdb restored with rdb-file, from every source server into every target of the same or a
 * newer release; every key's value and absolute expiry compared. A combination the target cannot load is
 * refused before any write (the target keeps running, untouched), naming both servers.
 *
 * One source per server kind (appendonly yes: it serves both the rdb and the aof backups), and one target
 * per kind and restore path, emptied between cases, to keep the wall time down.
 */

const execFileP = promisify(execFile);
const { cleanups, tempDir } = useCleanups();

/** Same or newer: what each server loads (RDB 9 / 10 / 11; measured in server-matrix.test.ts). */
const NEWER: Record<ServerKind, ServerKind[]> = {
  'redis-6.2': ['redis-6.2', 'redis-7.0', 'valkey-8.1'],
  'redis-7.0': ['redis-7.0', 'valkey-8.1'],
  'valkey-8.1': ['valkey-8.1'],
};
const older = (k: ServerKind) => SERVER_KINDS.filter((t) => !NEWER[k].includes(t));
const NAME: Record<ServerKind, RegExp> = { 'redis-6.2': /Redis 6\.2\.14/, 'redis-7.0': /Redis 7\.0\.\d+/, 'valkey-8.1': /Valkey 8\.1\.8/ };

interface Daemon { kind: ServerKind; port: number; dir: string; start: string; stop: string; pid(): Promise<number> }

/** A daemonized server managed only through shell commands, as a file-mode restore sees it. */
async function daemon(kind: ServerKind, aof: boolean): Promise<Daemon> {
  const dir = await tempDir('tykdr-matrix-daemon-');
  const port = await freePort();
  const bin = SERVER_BINARIES[kind];
  const start = `${bin.server} --port ${port} --bind 127.0.0.1 --dir ${dir} --dbfilename dump.rdb --appendonly ${aof ? 'yes' : 'no'} --daemonize yes --pidfile ${dir}/redis.pid --logfile ${dir}/redis.log --save ''`;
  const stop = `${bin.cli} -p ${port} shutdown nosave`;
  const pid = async () => Number((await readFile(path.join(dir, 'redis.pid'), 'utf8')).trim());
  await execFileP('sh', ['-c', start]);
  cleanups.push(async () => {
    const p = await pid().catch(() => 0);
    if (p > 0) process.kill(p, 'SIGKILL');
  });
  await waitFor(async () => (await execFileP(bin.cli, ['-p', String(port), 'ping']).then((o) => o.stdout.trim(), () => '')) === 'PONG', {
    timeoutMs: 15_000,
    what: `the daemonized ${kind} on port ${port} to answer PING`,
    detail: () => readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => ''),
  });
  return { kind, port, dir, start, stop, pid };
}

async function withClient<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

/** Empties a target and leaves one key in it, to show that a refused restore wrote nothing. */
const resetTarget = (port: number) => withClient(port, async (c) => {
  await c.flushall();
  await c.set('live', 'kept');
});

let ws: Workspace;
const sources = new Map<ServerKind, RedisServer>();
const expected = new Map<ServerKind, Map<string, KeyState>>();
const liveTargets = new Map<ServerKind, RedisServer>();

beforeAll(async () => {
  ws = await makeWorkspace();
  cleanups.push(() => ws.cleanup());
  await Promise.all(SERVER_KINDS.map(async (kind) => {
    const s = await startRedis({ server: kind, args: ['--appendonly', 'yes'] });
    cleanups.push(() => s.stop());
    sources.set(kind, s);
    await withClient(s.port, async (c) => {
      await fillEveryEncoding(c, { lean: true });
      // A rewrite (the RDB-preamble base), then more writes after it: the AOF is a base and increments.
      await c.call('BGREWRITEAOF');
      await waitFor(async () => /aof_rewrite_in_progress:0/.test(String(await c.info('persistence'))) && !/aof_rewrite_scheduled:1/.test(String(await c.info('persistence'))), {
        timeoutMs: 30_000, what: `${kind}: BGREWRITEAOF to finish`,
      });
      await c.select(5);
      await c.set('after-rewrite:str', 'x', 'PX', 7_200_000);
      await c.hset('after-rewrite:hash', 'a', '1', 'b', '2');
      await c.select(0);
      await c.del('str:embstr');
      await c.zadd('zset:small', 9, 'added-after-rewrite');
    });
    expected.set(kind, await readKeyspace(s.port));
  }));
  await Promise.all(SERVER_KINDS.map(async (kind) => {
    const t = await startRedis({ server: kind });
    cleanups.push(() => t.stop());
    liveTargets.set(kind, t);
  }));
}, 180_000);


function config(name: string, kind: ServerKind, mode: 'rdb' | 'aof', restore: string): Promise<string> {
  const s = sources.get(kind)!;
  return ws.writeConfig(`${name}.yaml`, `store: { kind: local, path: ./store-${kind}-${mode} }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${s.port}
    mode: ${mode}
    restore:
${restore.replace(/^/gm, '      ')}
restore: { stagingDir: ./staging-${name}, reportDir: ./reports-${name} }
`);
}

const backedUp = new Set<string>();
/** One backup per source and mode (the store is shared by the restores of that pair). */
async function backup(kind: ServerKind, mode: 'rdb' | 'aof'): Promise<void> {
  if (backedUp.has(`${kind}-${mode}`)) return;
  const b = await runCli(['backup', '--json', '--config', await config(`backup-${kind}-${mode}`, kind, mode, 'mode: live')], { cwd: ws.dir });
  expect(b.code, b.stderr + b.stdout).toBe(0);
  const src = JSON.parse(b.stdout).manifest.components.redis.source;
  if (mode === 'aof') {
    expect(src.transfer).toBe('aof-files');
    expect(src.aof.base_format).toBe('rdb');
    expect(src.aof.incr_commands).toBeGreaterThan(0);
    // Redis 6.2: its one AOF file, archived as the base of a folder with a one-line manifest (as Redis 7 upgrades it).
    expect(src.aof.layout).toBe(kind === 'redis-6.2' ? 'single-file' : 'multi-part');
  }
  backedUp.add(`${kind}-${mode}`);
}

async function restore(name: string, kind: ServerKind, mode: 'rdb' | 'aof', restoreYaml: string) {
  const r = await runCli(['restore', '--plan', 'redis', '--yes', '--json', '--config', await config(name, kind, mode, restoreYaml)], { cwd: ws.dir });
  const out = r.stdout.trim().startsWith('{') ? JSON.parse(r.stdout) : {};
  const step = out.report?.steps?.find((s: { id: string }) => s.id === 'redis');
  // A refused restore is a failed step whose reason is the error.
  return { ...r, step, error: String(step?.reason ?? out.error?.message ?? '') };
}

const fileRestore = (d: Daemon, mode: 'rdb-file' | 'aof-file') =>
  `mode: ${mode}\ntarget: { host: 127.0.0.1, port: ${d.port} }\ndataDir: ${d.dir}\nstopCommand: "${d.stop}"\nstartCommand: "${d.start}"\nloadTimeout: 30s`;

describe('backup mode aof', () => {
  describe.each(SERVER_KINDS)('from %s', (src) => {
    it.each(NEWER[src])('restores live into %s through a scratch server of a fitting release: every key, value and expiry equal', async (dst) => {
      await backup(src, 'aof');
      const t = liveTargets.get(dst)!;
      await withClient(t.port, (c) => c.flushall());
      const r = await restore(`aof-live-${src}-${dst}`, src, 'aof', `mode: live\nclasses: [must, should, quota, ephemeral, analytics, mdcb, other]\ntarget: { host: 127.0.0.1, port: ${t.port} }`);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.step.details.redis.target_server).toMatch(NAME[dst]);
      // The default redis-server (Debian's 7.0) serves when it fits. It does not for Valkey 8.1's AOF (its
      // base is RDB 11, which 7.0 cannot load), nor for a Redis 6.2 target (a 7.0 scratch writes DUMP payloads
      // of RDB 10, which 6.2 refuses): tykdr then finds the source's release in its tool cache, and says so.
      const picked = src === 'valkey-8.1' || dst === 'redis-6.2';
      expect(r.step.details.redis.scratch_server).toMatch(picked ? NAME[src] : NAME['redis-7.0']);
      const warned = /redisServer "redis-server" cannot serve this restore/.test(r.step.details.redis.warnings.join('\n'));
      expect(warned).toBe(picked);
      expect(diffKeyspaces(expected.get(src)!, await readKeyspace(t.port))).toEqual([]);
    }, 120_000);

    it.each(older(src))('is refused live by %s before any write, naming both servers', async (dst) => {
      await backup(src, 'aof');
      const t = liveTargets.get(dst)!;
      await resetTarget(t.port);
      const r = await restore(`aof-old-${src}-${dst}`, src, 'aof', `mode: live\ntarget: { host: 127.0.0.1, port: ${t.port} }`);
      expect(r.code, r.stderr + r.stdout).toBe(6);
      expect(r.error).toMatch(NAME[dst]);
      expect(r.error).toMatch(/cannot load RDB version 1[01]/);
      expect(r.error).toMatch(new RegExp(`written by ${NAME[src].source}`));
      expect(r.error).toContain('Nothing was changed');
      expect(await withClient(t.port, (c) => c.dbsize())).toBe(1);
    }, 120_000);

    const fileTargets = NEWER[src];
    it.each(fileTargets)('restores with aof-file into %s (stopped, folder placed, started): every key, value and expiry equal', async (dst) => {
      await backup(src, 'aof');
      const d = await daemon(dst, true);
      const r = await restore(`aof-file-${src}-${dst}`, src, 'aof', fileRestore(d, 'aof-file'));
      expect(r.code, r.stderr + r.stdout).toBe(0);
      // Redis 6.2 loads one file (the snapshot's base, placed as its appendfilename); 7.0+ the folder.
      expect(r.step.details.redis).toMatchObject({ mode: 'aof-file', placed_by: 'rename', ...(dst === 'redis-6.2' ? { appendfilename: 'appendonly.aof' } : { appenddirname: 'appendonlydir' }) });
      expect(diffKeyspaces(expected.get(src)!, await readKeyspace(d.port))).toEqual([]);
      await execFileP('sh', ['-c', d.stop]);
    }, 120_000);
  });

  it.each([['redis-7.0', 'redis-6.2'], ['valkey-8.1', 'redis-7.0']] as const)('a multi-part AOF snapshot of %s into %s in aof-file mode is refused before the target is stopped', async (src, dst) => {
    await backup(src, 'aof');
    const d = await daemon(dst, true);
    await resetTarget(d.port);
    const pid = await d.pid();
    const r = await restore(`aof-file-refused-${src}-${dst}`, src, 'aof', fileRestore(d, 'aof-file'));
    expect(r.code, r.stderr + r.stdout).toBe(6);
    expect(r.error).toMatch(new RegExp(`target ${NAME[dst].source} at 127\\.0\\.0\\.1:${d.port} cannot load RDB version 1[01] \\(written by ${NAME[src].source}\\)`));
    expect(r.error).toContain('Nothing was changed');
    expect(await d.pid()).toBe(pid);
    expect(await withClient(d.port, (c) => c.get('live'))).toBe('kept');
    await execFileP('sh', ['-c', d.stop]);
  }, 120_000);
});

describe('backup mode rdb, restored with rdb-file', () => {
  describe.each(SERVER_KINDS)('from %s', (src) => {
    it.each(NEWER[src])('into %s (stopped, dump.rdb placed, started): every key, value and expiry equal', async (dst) => {
      await backup(src, 'rdb');
      const d = await daemon(dst, false);
      const r = await restore(`rdb-file-${src}-${dst}`, src, 'rdb', fileRestore(d, 'rdb-file'));
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.step.details.redis).toMatchObject({ mode: 'rdb-file', placed_by: 'rename' });
      expect(r.step.details.redis.target_server).toMatch(NAME[dst]);
      expect(diffKeyspaces(expected.get(src)!, await readKeyspace(d.port))).toEqual([]);
      await execFileP('sh', ['-c', d.stop]);
    }, 120_000);

    it.each(older(src))('is refused by %s before the target is stopped', async (dst) => {
      await backup(src, 'rdb');
      const d = await daemon(dst, false);
      await resetTarget(d.port);
      await withClient(d.port, (c) => c.save());
      const before = await stat(path.join(d.dir, 'dump.rdb'));
      const pid = await d.pid();
      const r = await restore(`rdb-file-old-${src}-${dst}`, src, 'rdb', fileRestore(d, 'rdb-file'));
      expect(r.code, r.stderr + r.stdout).toBe(6);
      expect(r.error).toMatch(new RegExp(`target ${NAME[dst].source} at 127\\.0\\.0\\.1:${d.port} cannot load RDB version 1[01]`));
      expect(r.error).toMatch(new RegExp(`written by ${NAME[src].source}`));
      expect(r.error).toContain('Nothing was changed');
      expect(await d.pid()).toBe(pid);
      expect((await stat(path.join(d.dir, 'dump.rdb'))).mtimeMs).toBe(before.mtimeMs);
      expect(await withClient(d.port, (c) => c.get('live'))).toBe('kept');
      await execFileP('sh', ['-c', d.stop]);
    }, 120_000);
  });
});
