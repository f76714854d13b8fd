import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer, type ServerKind } from '../helpers/redis-server.js';
import { startStream } from '../helpers/stream.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Selective restore from a point in time (issue 13: "works ... from a point in time"), against a real
 * redis-server: `tykdr stream` captures a Tyk-like keyspace while sessions of two APIs change; an operator
 * deletes API A's keys; `restore --to-time <before the delete> --api A` into the same live server brings API
 * A's keys back as they were then (DUMP and absolute expiry), and every other key keeps its current value.
 */

const ORG_A = '5e9d9544a1dcd60001d0ed20';
const ORG_B = '5e9d9544a1dcd60001d0ed21';
const DBS = [0, 2];

interface KeyState {
  dump: string;
  /** Absolute expiry in ms, or -1. */
  expireAt: number;
  /** The string value, for sessions (to tell which API a session belongs to). */
  value?: string;
}

/** Every key of databases 0 and 2 ("db/name"), tykdr's marker left out. Redis 6.2 has no PEXPIRETIME: now + PTTL. */
async function keyspaceOf(port: number, exact = true): Promise<Map<string, KeyState>> {
  const out = new Map<string, KeyState>();
  for (const db of DBS) {
    const r = new Redis({ port, db });
    try {
      for (const k of (await r.keys('*')).filter((k) => !k.startsWith('tykdr:')).sort()) {
        const dump = (await r.dumpBuffer(k))!;
        const pttl = exact ? 0 : Number(await r.pttl(k));
        const expireAt = exact ? Number(await r.call('PEXPIRETIME', k)) : pttl < 0 ? pttl : Date.now() + pttl;
        const type = await r.type(k);
        out.set(`${db}/${k}`, { dump: createHash('sha256').update(dump).digest('hex'), expireAt, ...(type === 'string' ? { value: (await r.get(k))! } : {}) });
      }
    } finally {
      r.disconnect();
    }
  }
  return out;
}

/** Keys of API `api` in a keyspace: its sessions (access_rights) and its OAuth data. */
function keysOfApi(ks: Map<string, KeyState>, api: string): string[] {
  return [...ks].filter(([name, s]) => {
    const k = name.slice(name.indexOf('/') + 1);
    if (k.startsWith('oauth-data.')) return k.startsWith(`oauth-data.${api}.`);
    if (!k.startsWith('apikey-') || s.value === undefined) return false;
    return Object.hasOwn((JSON.parse(s.value) as { access_rights: object }).access_rights, api);
  }).map(([name]) => name);
}

function expectKeyspace(got: Map<string, KeyState>, want: Map<string, KeyState>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, w] of want) {
    const g = got.get(k)!;
    expect(g.dump, k).toBe(w.dump);
    if (w.expireAt < 0) expect(g.expireAt, k).toBe(w.expireAt);
    else expect(Math.abs(g.expireAt - w.expireAt), k).toBeLessThan(1000);
  }
}

const session = (org: string, apis: string[], note: string) =>
  JSON.stringify({ org_id: org, access_rights: Object.fromEntries(apis.map((a) => [a, { api_id: a, versions: ['Default'] }])), meta_data: { note } });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each<ServerKind>(['redis-7.0', 'redis-6.2'])('selective point-in-time restore (--to-time with --api) on %s', (kind) => {
  let server: RedisServer;
  const keyspace = (port: number) => keyspaceOf(port, kind !== 'redis-6.2');
  let ws: Workspace;
  let config: string;
  let w: Redis;
  let at: Date;
  let lastWriteBeforeT = 0;
  let atT: Map<string, KeyState>;
  let afterError: Map<string, KeyState>;
  /** API A's keys deleted by the "human error". */
  let deleted: string[];
  /** An API A session changed after T and not deleted: --no-overwrite keeps it as it is now. */
  const changedAfterT = '0/apikey-a-0';

  beforeAll(async () => {
    [server, ws] = await Promise.all([startRedis({ server: kind, args: ['--repl-diskless-sync-delay', '0'] }), makeWorkspace()]);
    config = await ws.writeConfig(
      'tykdr.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${server.port}
    restore: { target: { port: ${server.port} } }
`,
    );
    w = new Redis({ port: server.port });
    // The base: sessions of API A (org A) and API B (org B), OAuth clients of both, other keys.
    for (let i = 0; i < 8; i++) await w.set(`apikey-a-${i}`, session(ORG_A, ['apiA'], `a${i}`), 'EX', 86400 + i);
    for (let i = 0; i < 6; i++) await w.set(`apikey-b-${i}`, session(ORG_B, ['apiB'], `b${i}`));
    await w.set('apikey-ab', session(ORG_A, ['apiA', 'apiB'], 'both'));
    await w.set('oauth-data.apiA.oauth-clientid.ca', '{"id":"ca"}');
    await w.set('oauth-data.apiB.oauth-clientid.cb', '{"id":"cb"}');
    await w.sadd(`oauth-data.apiA.oauth-clientset.${ORG_A}`, 'ca');
    await w.hset('app:settings', { theme: 'dark' });
    await w.set('counter', '10');

    const s = startStream(config);
    await s.started;
    // After the base, before T: API A and B sessions change; new API A sessions (one in db 2, one with a
    // relative expiry, one inside MULTI/EXEC); one is renamed, one deleted; a B session moves to API A;
    // multi-key DEL and MSET mix selected keys with others.
    for (let i = 0; i < 4; i++) await w.set(`apikey-a-${i}`, session(ORG_A, ['apiA'], `a${i}-changed`), 'EX', 7200 + i);
    for (let i = 0; i < 3; i++) await w.set(`apikey-b-${i}`, session(ORG_B, ['apiB'], `b${i}-changed`));
    await w.set('apikey-a-new', session(ORG_A, ['apiA'], 'created in the feed'), 'EX', 600);
    await w.select(2);
    await w.set('apikey-a-db2', session(ORG_A, ['apiA'], 'db 2'));
    await w.set('other-db2', 'x');
    await w.select(0);
    await w.multi().set('apikey-a-tx', session(ORG_A, ['apiA'], 'in a transaction')).incrby('counter', 5).exec();
    await w.rename('apikey-a-7', 'apikey-a-renamed');
    await w.del('apikey-a-6', 'apikey-b-5');
    await w.mset('apikey-a-mset', session(ORG_A, ['apiA'], 'mset'), 'plain-mset', 'y');
    await w.set('apikey-b-4', session(ORG_B, ['apiA'], 'moved to A'));
    await w.pexpire('apikey-a-5', 5_000_000);
    await w.hset('oauth-data.apiA.oauth-client-tokens.ca', 'tok', '1');
    lastWriteBeforeT = Date.now();
    await sleep(2000);
    at = new Date();
    atT = await keyspace(server.port);
    await sleep(2000);
    // After T: B and other keys change, one A session changes; then the human error deletes API A's keys.
    for (let i = 0; i < 3; i++) await w.set(`apikey-b-${i}`, session(ORG_B, ['apiB'], `b${i}-after-T`));
    await w.incrby('counter', 100);
    await w.set('late-key', 'after T');
    await w.set('apikey-a-0', session(ORG_A, ['apiA'], 'changed after T'));
    const now = await keyspace(server.port);
    deleted = keysOfApi(now, 'apiA').filter((k) => k !== changedAfterT);
    for (const k of deleted) {
      const [db, name] = [Number(k.slice(0, k.indexOf('/'))), k.slice(k.indexOf('/') + 1)];
      await w.select(db);
      await w.del(name);
    }
    await w.select(0);
    await sleep(2500);
    s.child.kill('SIGTERM');
    const code = await s.exited;
    expect(code, s.stderr()).toBe(0);
    afterError = await keyspace(server.port);
  }, 180_000);

  afterAll(async () => {
    w?.disconnect();
    await server?.stop();
    await ws?.cleanup();
  });

  it('the scenario is what the test means: API A keys at T include feed-made ones, and the error deleted them', () => {
    const a = keysOfApi(atT, 'apiA');
    for (const k of ['0/apikey-a-new', '2/apikey-a-db2', '0/apikey-a-tx', '0/apikey-a-renamed', '0/apikey-a-mset', '0/apikey-b-4', '0/oauth-data.apiA.oauth-client-tokens.ca']) expect(a, k).toContain(k);
    expect(a).not.toContain('0/apikey-a-6');
    expect(deleted.length).toBeGreaterThanOrEqual(a.length - 1);
    for (const k of deleted) expect(afterError.has(k), k).toBe(false);
  });

  it('--dry-run lists what would be written and kept, and writes nothing', async () => {
    const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', at.toISOString(), '--api', 'apiA', '--dry-run', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { point_in_time: { reached: string }; selection: Array<{ selection: { would_write: number; kept: number; would_write_keys: string[]; kept_keys: string[] } }> };
    const sel = out.selection[0]!.selection;
    const atTApiA = keysOfApi(atT, 'apiA');
    expect(sel.kept).toBe(1);
    expect(sel.would_write).toBe(atTApiA.length - 1);
    expect(sel.kept_keys).toEqual(['apikey-****']);
    expect(new Date(out.point_in_time.reached).getTime()).toBeLessThanOrEqual(at.getTime());
    const text = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', at.toISOString(), '--api', 'apiA', '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Selective point-in-time restore of redis to \S+: base snapshot \S+ and \d+ segment\(s\)/);
    expect(text.stdout).toContain(`would write ${atTApiA.length - 1}`);
    expect(text.stdout).toContain('kept 1');
    expectKeyspace(await keyspace(server.port), afterError);
  });

  it('brings back API A as at T and leaves every other key as it is now (--no-overwrite keeps the changed A session)', async () => {
    const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', at.toISOString(), '--api', 'apiA', '--yes', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { report: { status: string; point_in_time: { reached: string }; steps: Array<{ id: string; details: Record<string, { selection: { written: number; kept: number }; feed_replay: { commands: number; errors: number }; scratch_server: string }> }> } };
    expect(out.report.status).toBe('succeeded');
    expect(new Date(out.report.point_in_time.reached).getTime()).toBeLessThanOrEqual(at.getTime());
    // The last moment the chain is known to cover: at or after the last write before T arrived.
    expect(new Date(out.report.point_in_time.reached).getTime()).toBeGreaterThanOrEqual(lastWriteBeforeT - 250);
    const d = out.report.steps.find((st) => st.id === 'redis')!.details.redis!;
    expect(d.feed_replay.errors).toBe(0);
    // The scratch server writes DUMP payloads the target takes: Redis 6.2 for a 6.2 target, not Debian's 7.0.
    expect(d.scratch_server).toMatch(kind === 'redis-6.2' ? /^Redis 6\.2\./ : /^Redis 7\.0\./);
    expect(d.feed_replay.commands).toBeGreaterThan(0);
    expect(d.selection.kept).toBe(1);
    const want = new Map(afterError);
    for (const k of keysOfApi(atT, 'apiA')) if (k !== changedAfterT) want.set(k, atT.get(k)!);
    expectKeyspace(await keyspace(server.port), want);
    // B's sessions and the other keys keep their post-T values, not those at T.
    expect((await keyspace(server.port)).get('0/apikey-b-0')!.dump).not.toBe(atT.get('0/apikey-b-0')!.dump);
  });

  it('--overwrite also puts the A session changed after T back as it was at T', async () => {
    const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', at.toISOString(), '--api', 'apiA', '--overwrite', '--yes', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const want = new Map(afterError);
    for (const k of keysOfApi(atT, 'apiA')) want.set(k, atT.get(k)!);
    expectKeyspace(await keyspace(server.port), want);
  });

  it('a killed selective point-in-time restore keeps its time in the journal; --resume brings API A back as at T', async () => {
    const crash = await ws.writeConfig('crash.yaml', `${await readFile(config, 'utf8')}restore: { stagingDir: ./staging }\n`);
    for (const k of [...deleted, changedAfterT]) {
      await w.select(Number(k.slice(0, k.indexOf('/'))));
      await w.del(k.slice(k.indexOf('/') + 1));
    }
    await w.select(0);
    const pre = await keyspace(server.port);
    const killed = await runCli(['restore', '--config', crash, '--plan', 'redis', '--to-time', at.toISOString(), '--api', 'apiA', '--yes'], {
      onStderr: (chunk, kill) => {
        if (chunk.includes('redis: restore redis')) kill('SIGKILL');
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    const dir = path.join(ws.dir, 'staging', 'tykdr-journal');
    const journal = JSON.parse(await readFile(path.join(dir, (await readdir(dir)).find((j) => j.endsWith('.json'))!), 'utf8')) as { to_time: string; selection: { apis: string[] } };
    expect(journal.to_time).toBe(at.toISOString());
    expect(journal.selection.apis).toEqual(['apiA']);

    const resumed = await runCli(['restore', '--config', crash, '--resume', '--json']);
    expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
    expect((JSON.parse(resumed.stdout) as { report: { point_in_time: { asked: string } } }).report.point_in_time.asked).toBe(at.toISOString());
    const want = new Map(pre);
    for (const k of keysOfApi(atT, 'apiA')) want.set(k, atT.get(k)!);
    expectKeyspace(await keyspace(server.port), want);
  }, 120_000);

  it('a killed whole point-in-time restore is not resumed (the feed would be replayed twice): exit 2 with the command to run again', async () => {
    const crash = path.join(ws.dir, 'crash.yaml');
    const killed = await runCli(['restore', '--config', crash, '--plan', 'redis', '--to-time', at.toISOString(), '--yes'], {
      onStderr: (chunk, kill) => {
        if (chunk.includes('redis: restore redis')) kill('SIGKILL');
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    const resumed = await runCli(['restore', '--config', crash, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(2);
    expect(resumed.stderr).toContain(`point-in-time restore to ${at.toISOString()}`);
    expect(resumed.stderr).toContain(`--to-time ${at.toISOString()}`);
  }, 120_000);

  it('--org B at T selects by the values at T: the session moved to API A stays in org B', async () => {
    const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', at.toISOString(), '--org', ORG_B, '--dry-run', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const sel = (JSON.parse(r.stdout) as { selection: Array<{ selection: { selected: number; would_write: number; kept: number } }> }).selection[0]!.selection;
    // At T org B has apikey-b-0..4 (b-5 deleted before T): all five exist now, so all are kept.
    expect(sel.kept).toBe(5);
    expect(sel.would_write).toBe(0);
  });
});
