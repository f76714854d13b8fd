import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { diffKeyspaces as diff, fillEveryEncoding, readKeyspace as keyspace, type KeyState } from '../helpers/redis-keyspace.js';
import { SERVER_KINDS, startRedis, type RedisServer, type ServerKind } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * The server matrix end to end, through the CLI: for every source server and backup mode (rdb, keys), a
 * backup, then a live restore into every target of the same or a newer server, and every key's value (as
 * the server DUMPs it, re-encoded by a newer one only when it must) and absolute expiry compared. A snapshot
 * a target cannot load is refused before any write, naming both servers.
 */

/** What each server's RESTORE accepts (measured in server-matrix.test.ts): a snapshot goes to the same or newer. */
const TARGETS: Record<ServerKind, ServerKind[]> = {
  'redis-6.2': ['redis-6.2', 'redis-7.0', 'valkey-8.1'],
  'redis-7.0': ['redis-7.0', 'valkey-8.1'],
  'valkey-8.1': ['valkey-8.1'],
};
const MODES = ['rdb', 'keys'] as const;

const servers: RedisServer[] = [];
let ws: Workspace;

beforeAll(async () => {
  ws = await makeWorkspace();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await ws?.cleanup();
});

async function start(kind: ServerKind): Promise<RedisServer> {
  const s = await startRedis({ server: kind });
  servers.push(s);
  return s;
}

describe.each(SERVER_KINDS.flatMap((src) => MODES.map((mode) => [src, mode] as const)))('a %s snapshot taken in %s mode', (src, mode) => {
  let source: RedisServer;
  let config: (target: RedisServer, load?: string) => Promise<string>;
  let expected: Map<string, KeyState>;

  beforeAll(async () => {
    source = await start(src);
    const c = new Redis({ port: source.port, lazyConnect: true });
    await c.connect();
    await fillEveryEncoding(c);
    c.disconnect();
    const name = `${src}-${mode}`.replace(/\./g, '');
    config = (target, load = 'restore') =>
      ws.writeConfig(
        `${name}.yaml`,
        `store: { kind: local, path: ./store-${name} }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    mode: ${mode}
${mode === 'keys' ? '    keys: { classes: [must, should, quota, ephemeral, analytics, mdcb, other] }\n' : ''}    restore:
      mode: live
      load: ${load}
      classes: [must, should, quota, ephemeral, analytics, mdcb, other]
      target: { host: 127.0.0.1, port: ${target.port} }
restore: { stagingDir: ./staging-${name}, reportDir: ./reports-${name} }
`,
      );
    const b = await runCli(['backup', '--config', await config(source)], { cwd: ws.dir });
    expect(b.code, b.stderr).toBe(0);
    expected = await keyspace(source.port);
    expect(expected.size).toBeGreaterThan(10);
  }, 120_000);

  it.each(TARGETS[src])('restores live into %s: every key, value and expiry equal', async (dst) => {
    const target = await start(dst);
    const r = await runCli(['restore', '--plan', 'redis', '--yes', '--json', '--config', await config(target)], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout).report;
    const step = report.steps.find((s: { id: string }) => s.id === 'redis');
    expect(step.details.redis.target_server).toMatch(dst.startsWith('valkey') ? /^Valkey 8\.1\.8$/ : /^Redis /);
    // Strings go in by SET ... PXAT (every server here has it), the other types by RESTORE.
    expect(step.details.redis.keys_written_with_set).toBe([...expected.values()].filter((k) => k.type === 'string').length);
    expect(step.details.redis.set_not_used).toBeUndefined();
    expect(diff(expected, await keyspace(target.port))).toEqual([]);
    await target.stop();
  }, 120_000);

  if (mode === 'rdb') {
    it.each(TARGETS[src])('loads by replication into %s (restore.load replication): every key, value and expiry equal; a master again', async (dst) => {
      const target = await start(dst);
      const r = await runCli(['restore', '--plan', 'redis', '--yes', '--json', '--config', await config(target, 'replication')], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      const step = JSON.parse(r.stdout).report.steps.find((s: { id: string }) => s.id === 'redis');
      expect(step.details.redis.load).toBe('replication');
      expect(diff(expected, await keyspace(target.port))).toEqual([]);
      expect(await target.cli('INFO', 'replication')).toMatch(/role:master/);
      await target.stop();
    }, 120_000);
  }

  const older = SERVER_KINDS.filter((k) => !TARGETS[src].includes(k));
  if (older.length > 0) {
    it.each(older)('is refused by %s before any write, naming both servers', async (dst) => {
      const target = await start(dst);
      const t = new Redis({ port: target.port, lazyConnect: true });
      await t.connect();
      await t.set('live', 'kept');
      const r = await runCli(['restore', '--plan', 'redis', '--yes', '--config', await config(target)], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(6);
      expect(r.stdout + r.stderr).toMatch(/cannot (RESTORE|load)/);
      expect(r.stdout + r.stderr).toContain(dst === 'redis-6.2' ? 'Redis 6.2.14' : 'Redis 7.0');
      expect(await t.dbsize()).toBe(1);
      t.disconnect();
      await target.stop();
    }, 120_000);
  }
});
