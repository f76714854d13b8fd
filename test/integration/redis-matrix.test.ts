import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { fillEveryEncoding } from '../helpers/redis-keyspace.js';
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

interface KeyState { type: string; value: string; expireAt: number }

/** Every key of every database: type, a type-aware value, and the absolute expiry (ms, -1 none). */
async function keyspace(port: number): Promise<Map<string, KeyState>> {
  const out = new Map<string, KeyState>();
  const hex = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('hex') : Array.isArray(v) ? v.map(hex) : v);
  const admin = new Redis({ port, lazyConnect: true });
  await admin.connect();
  const dbs = [...String(await admin.info('keyspace')).matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
  admin.disconnect();
  for (const db of dbs) {
    const r = new Redis({ port, db, lazyConnect: true });
    await r.connect();
    for (const key of await r.keysBuffer('*')) {
      const type = await r.type(key);
      let value: unknown;
      if (type === 'string') value = await r.getBuffer(key);
      else if (type === 'hash') value = ((await r.callBuffer('HGETALL', key)) as Buffer[]).map((b) => b.toString('hex')).sort();
      else if (type === 'list') value = await r.lrangeBuffer(key, 0, -1);
      else if (type === 'set') value = ((await r.smembersBuffer(key)) as Buffer[]).map((b) => b.toString('hex')).sort();
      else if (type === 'zset') {
        // Scores as numbers: servers spell infinities differently ("inf", "Infinity").
        const raw = (await r.callBuffer('ZRANGE', key, '0', '-1', 'WITHSCORES')) as Array<Buffer | Buffer[]>;
        // A flat [member, score, ...] list, or [member, score] pairs, depending on the protocol the server speaks.
        const pairs = raw.length > 0 && Array.isArray(raw[0]) ? (raw as Buffer[][]) : (raw as Buffer[]).flatMap((m, i, all) => (i % 2 === 0 ? [[m, all[i + 1]!]] : []));
        const score = (t: string) => (/^-?inf/i.test(t) ? (t.startsWith('-') ? -Infinity : Infinity) : Number(t));
        value = pairs.map(([m, sc]) => [m!.toString('hex'), String(score(String(sc)))]);
      } else if (type === 'stream') {
        // Entries, and per group the fields every version reports (7.0 adds entries-read and lag).
        const groups = ((await r.call('XINFO', 'GROUPS', key)) as unknown[][]).map((g) => {
          const f: Record<string, unknown> = {};
          for (let i = 0; i < g.length; i += 2) f[String(g[i])] = g[i + 1];
          return [f.name, f.consumers, f.pending, f['last-delivered-id']];
        });
        value = [await r.callBuffer('XRANGE', key, '-', '+'), groups];
      }
      const pttl = await r.pttl(key);
      // Compare expiries to the second: PTTL is read at different moments on the two servers.
      out.set(`${db}/${key.toString('hex')}`, { type, value: JSON.stringify(hex(value)), expireAt: pttl < 0 ? -1 : Math.round((Date.now() + pttl) / 1000) });
    }
    r.disconnect();
  }
  return out;
}

function diff(a: Map<string, KeyState>, b: Map<string, KeyState>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) out.push(`missing ${k}`);
    else if (w.type !== v.type || w.value !== v.value) out.push(`value of ${k} (${v.type})`);
    else if (Math.abs(w.expireAt - v.expireAt) > 2) out.push(`expiry of ${k}: ${v.expireAt} vs ${w.expireAt}`);
  }
  for (const k of b.keys()) if (!a.has(k)) out.push(`extra ${k}`);
  return out;
}

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
  let config: (target: RedisServer) => Promise<string>;
  let expected: Map<string, KeyState>;

  beforeAll(async () => {
    source = await start(src);
    const c = new Redis({ port: source.port, lazyConnect: true });
    await c.connect();
    await fillEveryEncoding(c);
    c.disconnect();
    const name = `${src}-${mode}`.replace(/\./g, '');
    config = (target) =>
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
    expect(diff(expected, await keyspace(target.port))).toEqual([]);
    await target.stop();
  }, 120_000);

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
