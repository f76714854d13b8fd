import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayKeyName, KeySelector } from '../../src/core/tyk/key-selection.js';
import { countMissing } from '../../src/backends/redis/target/selective-write.js';
import { RespPipe } from '../../src/backends/redis/protocol/resp-pipe.js';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { redisComponent, redisContents, startRedisCluster, takeSnapshot, type KeyState, type RedisCluster } from '../helpers/redis-cluster.js';
import { KeysSource } from '../../src/backends/redis/source/keys-source.js';
import { restoreRedis } from '../../src/backends/redis/target/restore-redis.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const ORG_A = '5e9d9544a1dcd60001d0ed20';
const ORG_B = '5e9d9544a1dcd60001d0ed21';

interface Seeded {
  /** Session keys per org and APIs. */
  sessions: Array<{ key: string; org: string; apis: string[] }>;
}

/** A Tyk-like keyspace: sessions of two orgs over three APIs, OAuth clients and tokens, certificates, other keys, TTLs. */
async function seed(r: Redis): Promise<Seeded> {
  const now = Math.floor(Date.now() / 1000);
  const sessions: Seeded['sessions'] = [];
  const p = r.pipeline();
  let n = 0;
  const add = (org: string, apis: string[], count: number, ttl?: number) => {
    for (let j = 0; j < count; j++) {
      const key = `apikey-${(n++).toString(16).padStart(32, '0')}`;
      const value = JSON.stringify({
        org_id: org,
        access_rights: Object.fromEntries(apis.map((a) => [a, { api_id: a, api_name: `API ${a}`, versions: ['Default'] }])),
        alias: `user-${n}`,
        last_updated: String(now),
        // Long, repetitive values: Redis stores them LZF-compressed in the RDB.
        meta_data: { note: 'tyk '.repeat(10 + n * 5) },
      });
      if (ttl) p.set(key, value, 'EX', ttl + n);
      else p.set(key, value);
      sessions.push({ key, org, apis });
    }
  };
  add(ORG_A, ['api1'], 6, 86400);
  add(ORG_A, ['api2'], 4);
  add(ORG_A, ['api1', 'api2'], 3, 3600);
  add(ORG_B, ['api3'], 5, 86400);
  add(ORG_B, ['api1'], 2);
  for (const c of ['c1', 'c2', 'c3']) p.set(`oauth-data.api1.oauth-clientid.${c}`, JSON.stringify({ id: c, secret: `s-${c}`, redirecturi: 'https://x', policyid: '' }));
  for (const c of ['c4', 'c5']) p.set(`oauth-data.api2.oauth-clientid.${c}`, JSON.stringify({ id: c, secret: `s-${c}`, redirecturi: 'https://y', policyid: '' }));
  p.sadd(`oauth-data.api1.oauth-clientset.${ORG_A}`, 'c1', 'c2', 'c3');
  p.rpush(`oauth-data.api1.oauth-client-index.${ORG_A}`, 'c1', 'c2', 'c3');
  p.sadd(`oauth-data.api2.oauth-clientset.${ORG_A}`, 'c4', 'c5');
  p.set('oauth-data.api1.oauth-access.tok-1111', '{"client_id":"c1"}', 'EX', 3600);
  p.set('oauth-data.api1.oauth-access.tok-2222', '{"client_id":"c2"}', 'EX', 3700);
  p.zadd('oauth-data.api1.oauth-client-tokens.c1', now + 3600, 'tok-1111');
  p.set('oauth-data.api1.oauth-authorize.code1', '{}', 'EX', 1800);
  p.set(`cert-raw-${ORG_A}aa11`, '-----BEGIN CERTIFICATE-----\nMIIA\n-----END CERTIFICATE-----');
  p.rpush(`cert-${ORG_A}-index`, `${ORG_A}aa11`);
  p.set(`cert-raw-${ORG_B}bb22`, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----');
  p.set(`orgkey.${ORG_A}`, JSON.stringify({ org_id: ORG_A, quota_max: 1000 }));
  p.set(`orgkey.${ORG_B}`, JSON.stringify({ org_id: ORG_B, quota_max: 2000 }), 'EX', 90000);
  p.hset('app:settings', { theme: 'dark', lang: 'en' });
  p.zadd('leaderboard', 1, 'a', 2, 'b');
  p.set('counter', '12345');
  p.set('quota-abc', '17', 'EX', 3600);
  await p.exec();
  return { sessions };
}

type State = Map<string, { dump: string; expireAt: number; members?: string }>;

/** Every key: its DUMP (bytes) and absolute expiry (PEXPIRETIME; -1 none); for sets also their sorted members. */
async function state(r: Redis): Promise<State> {
  const out: State = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const k of keys) {
      const [dump, exp, type] = await Promise.all([r.dumpBuffer(k), r.call('PEXPIRETIME', k) as Promise<number>, r.type(k)]);
      const members = type === 'set' ? JSON.stringify((await r.smembers(k)).sort()) : undefined;
      if (dump) out.set(k, { dump: dump.toString('hex'), expireAt: Number(exp), members });
    }
  } while (cursor !== '0');
  return out;
}

/**
 * `actual` holds `expected`'s keys, byte for byte (DUMP), expiries within a second. `restored`: the keys
 * were written again by RESTORE, and a set in hash-table encoding is serialized in hash order, which a new
 * table may change: sets are then compared by their members.
 */
function expectSame(actual: State, expected: State, keys: Iterable<string>, restored = false): void {
  for (const k of keys) {
    const a = actual.get(k);
    const e = expected.get(k);
    expect(a, `key ${k}`).toBeDefined();
    if (restored && e!.members !== undefined) expect(a!.members, `members of ${k}`).toBe(e!.members);
    else expect(a!.dump, `value of ${k}`).toBe(e!.dump);
    if (e!.expireAt < 0) expect(a!.expireAt, `expiry of ${k}`).toBe(-1);
    else expect(Math.abs(a!.expireAt - e!.expireAt), `expiry of ${k}`).toBeLessThanOrEqual(1000);
  }
}

const selectionOf = (report: any) => report.steps.find((s: any) => s.id === 'redis').details.redis.selection;

function client(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  return r;
}

describe('selective restore from an RDB snapshot into the live Redis', () => {
  let live: RedisServer;
  let ws: Workspace;
  let r: Redis;
  let config: string;
  let seeded: Seeded;
  let orig: State;
  let api1Keys: string[];
  let modified: string;
  let before: State;

  beforeAll(async () => {
    [live, ws] = await Promise.all([startRedis(), makeWorkspace()]);
    r = client(live.port);
    seeded = await seed(r);
    config = await ws.writeConfig(
      'tykdr.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${live.port} }
restore: { reportDir: ./reports }
`,
    );
    const b = await runCli(['backup', '-c', config]);
    expect(b.code, b.stderr).toBe(0);
    orig = await state(r);

    // The human error: one API's sessions and OAuth data deleted, one OAuth client of another API deleted,
    // and other keys changed since the backup.
    const api1Sessions = seeded.sessions.filter((s) => s.apis.includes('api1'));
    modified = api1Sessions.find((s) => s.apis.length === 2)!.key;
    api1Keys = [...orig.keys()].filter((k) => k.startsWith('oauth-data.api1.') || api1Sessions.some((s) => s.key === k));
    await r.del(...api1Keys.filter((k) => k !== modified));
    await r.set(modified, JSON.stringify({ org_id: ORG_A, access_rights: { api1: {}, api2: {} }, alias: 'changed after the backup' }), 'KEEPTTL');
    await r.del('oauth-data.api2.oauth-clientid.c4');
    const orgBApi3 = seeded.sessions.find((s) => s.org === ORG_B && s.apis[0] === 'api3')!.key;
    await r.set(orgBApi3, JSON.stringify({ org_id: ORG_B, access_rights: { api3: {} }, alias: 'also changed' }), 'KEEPTTL');
    await r.hset('app:settings', 'theme', 'light');
    await r.expire(seeded.sessions.find((s) => s.apis[0] === 'api2')!.key, 500);
    await r.set('new-after-backup', 'fresh');
    before = await state(r);
  }, 120_000);

  afterAll(async () => {
    r?.disconnect();
    await Promise.all([live?.stop(), ws?.cleanup()]);
  });

  // What --api api1 selects (restore.classes must, should, other): the api1 sessions and OAuth data, not the
  // short-lived authorize code (ephemeral).
  const selectedApi1 = () => api1Keys.filter((k) => !k.includes('.oauth-authorize.'));

  it('--dry-run lists what would be written and kept, and writes nothing', async () => {
    const res = await runCli(['restore', '--plan', 'redis', '-c', config, '--api', 'api1', '--dry-run', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    const sel = out.selection[0].selection;
    const missing = selectedApi1().filter((k) => k !== modified);
    expect(sel.dry_run).toBe(true);
    expect(sel.selected).toBe(selectedApi1().length);
    expect(sel.would_write).toBe(missing.length);
    expect(sel.kept).toBe(1);
    expect(sel.kept_keys).toEqual([displayKeyName(modified)]);
    expect([...sel.would_write_keys].sort()).toEqual(missing.map(displayKeyName).sort());
    expect(sel.skipped_not_selected).toBe(orig.size - selectedApi1().length);
    expect(sel.skipped_per_class.ephemeral).toBe(1);
    expect(sel.values_decoded).toBeGreaterThanOrEqual(seeded.sessions.length);
    // Credentials are never printed whole.
    expect(res.stdout).not.toContain(modified);
    expectSame(await state(r), before, before.keys());
    expect((await state(r)).size).toBe(before.size);

    const text = await runCli(['restore', '--plan', 'redis', '-c', config, '--api', 'api1', '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`would write (${missing.length})`);
    expect(text.stdout).toContain('kept (exists in the target; --overwrite replaces it) (1)');
    expect(text.stdout).toContain('oauth-data.api1.oauth-clientid.c1');
    expect(text.stdout).toContain('a selective restore writes only the selected keys and keeps those it holds');
  }, 120_000);

  it('restores just that API without --yes (no-overwrite is the default); everything else untouched', async () => {
    const res = await runCli(['restore', '--plan', 'redis', '-c', config, '--api', 'api1', '--json']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const { report, report_files } = JSON.parse(res.stdout);
    expect(report.status).toBe('succeeded');
    const sel = selectionOf(report);
    const missing = selectedApi1().filter((k) => k !== modified);
    expect(sel.filter).toMatchObject({ apis: ['api1'], keys: [], orgs: [], overwrite: false });
    expect(sel.written).toBe(missing.length);
    expect(sel.replaced).toBe(0);
    expect(sel.kept).toBe(1);
    expect(sel.kept_keys).toEqual([displayKeyName(modified)]);
    const checks = Object.fromEntries(report.steps.find((s: any) => s.id === 'redis').checks.map((c: any) => [c.name, c]));
    expect(checks['redis-key-counts'].status).toBe('passed');
    expect(checks['redis-key-counts'].detail).toContain(`all ${selectedApi1().length} selected keys`);
    expect(checks['redis-key-counts'].evidence.keys_from).toBe('the keys the restore wrote or kept');
    expect(checks['redis-sample'].status).toBe('passed');
    expect(checks['redis-ttl'].status).toBe('passed');

    const after = await state(r);
    expectSame(after, orig, missing, true); // back as backed up, TTLs as absolute times
    expectSame(after, before, [...before.keys()]); // every other key, and the modified one, untouched
    expect(after.has('oauth-data.api1.oauth-authorize.code1')).toBe(false);
    expect(after.size).toBe(before.size + missing.length);
    expect(await r.exists('tykdr:restore:in-progress')).toBe(0);
    // The saved report records the filter and the counts.
    const saved = JSON.parse(await readFile(report_files.json, 'utf8'));
    expect(selectionOf(saved)).toMatchObject({ written: missing.length, kept: 1, filter: { apis: ['api1'] } });
  }, 120_000);

  it('restores one deleted OAuth client by key pattern', async () => {
    const pre = await state(r);
    const res = await runCli(['restore', '--plan', 'redis', '-c', config, '--key', 'oauth-data.api2.oauth-clientid.c4', '--json']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const sel = selectionOf(JSON.parse(res.stdout).report);
    expect(sel).toMatchObject({ selected: 1, written: 1, kept: 0 });
    expect(sel.written_keys).toEqual(['oauth-data.api2.oauth-clientid.c4']);
    const after = await state(r);
    expectSame(after, orig, ['oauth-data.api2.oauth-clientid.c4'], true);
    expectSame(after, pre, pre.keys());
    expect(after.size).toBe(pre.size + 1);
  }, 120_000);

  it('--overwrite needs confirmation, then replaces the selected keys only', async () => {
    const pre = await state(r);
    const refused = await runCli(['restore', '--plan', 'redis', '-c', config, '--api', 'api1', '--overwrite']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass --yes');
    expectSame(await state(r), pre, pre.keys());

    const res = await runCli(['restore', '--plan', 'redis', '-c', config, '--api', 'api1', '--overwrite', '--yes', '--json']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const sel = selectionOf(JSON.parse(res.stdout).report);
    expect(sel).toMatchObject({ written: selectedApi1().length, replaced: selectedApi1().length, kept: 0 });
    const after = await state(r);
    expectSame(after, orig, selectedApi1(), true); // the modified session is the snapshot's again
    expectSame(after, pre, [...pre.keys()].filter((k) => !selectedApi1().includes(k)));
    expect(after.get('new-after-backup')).toBeDefined();
  }, 120_000);

  it('a killed selective restore keeps its filter in the journal, and --resume writes only the selected keys', async () => {
    const crashConfig = await ws.writeConfig(
      'crash.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${live.port} }
restore: { reportDir: ./reports, stagingDir: ./staging }
`,
    );
    await r.del(...selectedApi1());
    await r.set('counter', '777');
    const pre = await state(r);
    const killed = await runCli(['restore', '--plan', 'redis', '-c', crashConfig, '--api', 'api1'], {
      onStderr: (chunk, kill) => {
        if (chunk.includes('redis: restore redis')) kill('SIGKILL');
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    // Whatever the kill left, no key outside the selection changed.
    const mid = await state(r);
    expectSame(mid, pre, pre.keys());
    const journals = await readdir(path.join(ws.dir, 'staging', 'tykdr-journal'));
    const journal = JSON.parse(await readFile(path.join(ws.dir, 'staging', 'tykdr-journal', journals.find((j) => j.endsWith('.json'))!), 'utf8'));
    expect(journal.selection).toMatchObject({ apis: ['api1'], overwrite: false });

    const resumed = await runCli(['restore', '--resume', '-c', crashConfig, '--json']);
    expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
    const sel = selectionOf(JSON.parse(resumed.stdout).report);
    expect(sel.filter).toMatchObject({ apis: ['api1'], overwrite: false });
    expect(sel.written + sel.kept).toBe(selectedApi1().length);
    const after = await state(r);
    expectSame(after, orig, selectedApi1(), true);
    expectSame(after, pre, pre.keys());
    expect(after.size).toBe(pre.size + selectedApi1().length);
    expect(await r.exists('tykdr:restore:in-progress')).toBe(0);
  }, 120_000);

  it('--no-overwrite alone puts back every key the live Redis lost and replaces none', async () => {
    const lost = ['orgkey.' + ORG_A, `cert-raw-${ORG_B}bb22`, 'leaderboard'];
    await r.del(...lost);
    await r.set('counter', '4242');
    const pre = await state(r);
    const res = await runCli(['restore', '--plan', 'redis', '-c', config, '--no-overwrite', '--json']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const sel = selectionOf(JSON.parse(res.stdout).report);
    expect(sel.description).toBe('every key of the restored classes; existing keys kept');
    expect(sel.written).toBe(lost.length);
    expect([...sel.written_keys].sort()).toEqual([...lost].sort());
    expect(sel.kept).toBe(sel.selected - lost.length);
    expect(sel.skipped_per_class).toMatchObject({ quota: 1, ephemeral: 1 });
    const after = await state(r);
    expectSame(after, orig, lost, true);
    expectSame(after, pre, pre.keys());
  }, 120_000);

  it('a bad --class is refused, naming it, and changes nothing', async () => {
    const pre = await state(r);
    const bad = await runCli(['restore', '--plan', 'redis', '-c', config, '--class', 'musts', '--yes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--class "musts" is not a Tyk key class');
    expectSame(await state(r), pre, pre.keys());
  }, 60_000);
});

describe('selective restore from key-level and AOF snapshots', () => {
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];
  let ws: Workspace;

  beforeAll(async () => {
    ws = await makeWorkspace();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all([...servers.map((s) => s.stop()), ws?.cleanup()]);
  });

  async function setup(mode: 'keys' | 'aof', name: string) {
    const s = await startRedis(mode === 'aof' ? { args: ['--appendonly', 'yes'] } : {});
    servers.push(s);
    const r = client(s.port);
    clients.push(r);
    const seeded = await seed(r);
    const config = await ws.writeConfig(
      `${name}.yaml`,
      `store: { kind: local, path: ./store-${name} }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${s.port}, mode: ${mode} }
restore: { reportDir: ./reports-${name} }
`,
    );
    const b = await runCli(['backup', '-c', config]);
    expect(b.code, b.stderr).toBe(0);
    return { r, seeded, config, orig: await state(r) };
  }

  it('the check after a restore finds selected keys that are missing, from remembered keys or by reading the snapshot again', async () => {
    const s = await startRedis();
    servers.push(s);
    const r = client(s.port);
    clients.push(r);
    await r.set('a1', 'x');
    await r.set('b1', 'y');
    const payload = (await r.dumpBuffer('a1'))!;
    const selector = new KeySelector({ patterns: ['a*'], classes: [], orgs: [], apis: [], overwrite: false }, ['other']);
    const rec = (key: string, expireAt = -1) => ({ db: 0, key: Buffer.from(key), expireAt, payload });
    // a2 is selected and missing; b2 is missing but not selected; a3 expired before the check.
    const records = [rec('a1'), rec('a2'), rec('b1'), rec('b2'), rec('a3', Date.now() - 1)];
    const common = {
      selector,
      router: { laneOf: (db: number) => db, open: (db: number) => RespPipe.open({ host: '127.0.0.1', port: s.port, db, connectTimeoutMs: 5000 }), describe: () => 'test' },
      batchSize: 2,
      explain: (err: unknown) => err as Error,
    };
    const reread = await countMissing({ ...common, records: (async function* () { yield records; })() });
    expect(reread).toEqual({ checked: 2, missing: 1, missingNames: ['a2'] });
    const remembered = await countMissing({ ...common, records: { remembered: [rec('a1'), rec('a2')] } });
    expect(remembered).toEqual({ checked: 2, missing: 1, missingNames: ['a2'] });
  }, 60_000);

  it('key-level snapshot: one organisation deleted and put back with --org; the other org untouched', async () => {
    const { r, seeded, config, orig } = await setup('keys', 'keys');
    const orgB = [...orig.keys()].filter((k) => k.includes(ORG_B) || seeded.sessions.some((s) => s.key === k && s.org === ORG_B));
    expect(orgB.length).toBe(5 + 2 + 2); // sessions, cert, orgkey
    await r.del(...orgB.slice(1));
    const changed = orgB[0]!;
    await r.set(changed, 'changed', 'KEEPTTL');
    const before = await state(r);

    const res = await runCli(['restore', '--plan', 'redis', '-c', config, '--org', ORG_B, '--json']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const sel = selectionOf(JSON.parse(res.stdout).report);
    expect(sel).toMatchObject({ selected: orgB.length, written: orgB.length - 1, kept: 1, kept_keys: [displayKeyName(changed)] });
    const after = await state(r);
    expectSame(after, orig, orgB.slice(1), true);
    expectSame(after, before, before.keys());
    expect(after.size).toBe(orig.size);
  }, 180_000);

  it('AOF snapshot (selected in a scratch server): one API\'s OAuth data put back by pattern', async () => {
    const { r, config, orig } = await setup('aof', 'aof');
    const oauth = [...orig.keys()].filter((k) => k.startsWith('oauth-data.api1.') && !k.includes('.oauth-authorize.'));
    await r.del(...oauth);
    await r.set('counter', '99999');
    const before = await state(r);

    const dry = await runCli(['restore', '--plan', 'redis', '-c', config, '--key', 'oauth-data.api1.*', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).selection[0].selection).toMatchObject({ would_write: oauth.length, kept: 0, snapshot_keys: orig.size });
    expectSame(await state(r), before, before.keys());

    const res = await runCli(['restore', '--plan', 'redis', '-c', config, '--key', 'oauth-data.api1.*', '--json']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const report = JSON.parse(res.stdout).report;
    expect(report.status).toBe('succeeded');
    expect(selectionOf(report)).toMatchObject({ written: oauth.length, kept: 0, snapshot_keys: orig.size });
    const after = await state(r);
    expectSame(after, orig, oauth, true);
    expectSame(after, before, before.keys());
    expect(after.size).toBe(before.size + oauth.length);
  }, 180_000);
});

describe('selective restore into a Redis Cluster (key-level snapshot)', () => {
  let cluster: RedisCluster;
  let c: Cluster;
  const dirs: string[] = [];
  afterAll(async () => {
    c?.disconnect();
    await cluster?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** Every key of every master, named with the master that holds it: a key restored elsewhere would show. */
  async function contents(): Promise<Map<string, KeyState>> {
    const out = new Map<string, KeyState>();
    for (const [i, n] of cluster.nodes.entries()) for (const [k, v] of await redisContents(n.port, [0])) out.set(`${i}:${k}`, v);
    return out;
  }

  it('one API\'s keys deleted on the cluster come back on the masters owning their slots; modified keys kept', async () => {
    cluster = await startRedisCluster(3);
    c = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })), { lazyConnect: true });
    await c.connect();
    const ops: Array<Promise<unknown>> = [];
    for (let i = 0; i < 60; i++) {
      const api = `api${i % 3}`;
      ops.push(c.set(`apikey-${i.toString(16).padStart(32, '0')}`, JSON.stringify({ org_id: ORG_A, access_rights: { [api]: {} } }), 'EX', 86400 + i));
    }
    for (const cl of ['c1', 'c2']) ops.push(c.set(`oauth-data.api1.oauth-clientid.${cl}`, JSON.stringify({ id: cl })));
    ops.push(c.set('oauth-data.api2.oauth-clientid.c9', JSON.stringify({ id: 'c9' })));
    await Promise.all(ops);
    const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-sel-cluster-'));
    dirs.push(dir);
    const seed = cluster.nodes[0]!;
    const snap = await takeSnapshot(new KeysSource(redisComponent(`port: ${seed.port}\nmode: keys`)), dir);
    const orig = await contents();
    const api1Oauth = [...orig.keys()].filter((k) => k.includes('/oauth-data.api1.'));
    expect(api1Oauth).toHaveLength(2);
    // The api1 sessions, read back from the values (the cluster client knows where each key lives).
    const sessions: string[] = [];
    for (let i = 0; i < 60; i++) if (i % 3 === 1) sessions.push(`apikey-${i.toString(16).padStart(32, '0')}`);
    const selected = [...sessions, 'oauth-data.api1.oauth-clientid.c1', 'oauth-data.api1.oauth-clientid.c2'];
    const kept = sessions[0]!;
    for (const k of selected) if (k !== kept) await c.del(k);
    await c.set(kept, 'modified', 'KEEPTTL');
    const before = await contents();

    const out = await restoreRedis({
      component: redisComponent(`port: ${seed.port}\nmode: keys\nrestore: { sample: 50 }`),
      manifest: snap.manifest,
      rdbFile: snap.file,
      workDir: dir,
      checks: ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl'],
      selection: { patterns: [], classes: [], orgs: [], apis: ['api1'], overwrite: false },
    });
    const sel = out.details.selection as Record<string, any>;
    expect(sel).toMatchObject({ selected: selected.length, written: selected.length - 1, kept: 1, kept_keys: [displayKeyName(kept)] });
    for (const ch of out.checks) expect(ch.status, `${ch.name}: ${ch.detail}`).toBe('passed');
    const after = await contents();
    // Every key is on the same master as when it was backed up, with the same value and expiry; the kept one as modified.
    for (const [k, v] of orig) {
      const name = k.slice(k.indexOf('/') + 1);
      const expected = name === kept ? before.get(k)! : v;
      expect(after.get(k), k).toBeDefined();
      expect(after.get(k)!.value, k).toBe(expected.value);
      expect(Math.abs(after.get(k)!.expireAt - expected.expireAt), k).toBeLessThanOrEqual(1000);
    }
    expect(after.size).toBe(orig.size);
  }, 180_000);
});
