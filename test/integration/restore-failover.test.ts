import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRedis, startSentinel, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * A Sentinel topology (1 master, 2 replicas, 3 sentinels, started here) with a failover forced while a live
 * restore runs: at the end the master Sentinel names holds every key of the snapshot, or the restore failed
 * saying a failover happened and a rerun succeeds. Never "succeeded" with the keys lost on a demoted master.
 */

const MASTER = 'tykmaster';
const MARK = 'restoring redis (redis)';

let nodes: RedisServer[] = [];
let sentinels: RedisServer[] = [];
let ws: Workspace;
let configFile: string;
let snapshotKeys: number;

async function currentMaster(): Promise<number> {
  for (const s of sentinels) {
    const c = new Redis({ port: s.port, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await c.connect();
      const [, port] = (await c.call('SENTINEL', 'get-master-addr-by-name', MASTER)) as [string, string];
      return Number(port);
    } catch {
      // try the next sentinel
    } finally {
      c.disconnect();
    }
  }
  throw new Error('no sentinel names the master');
}

async function dbsize(port: number): Promise<number> {
  const c = new Redis({ port, lazyConnect: true });
  await c.connect();
  try {
    return await c.dbsize();
  } finally {
    c.disconnect();
  }
}

async function until(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs a restore and forces a Sentinel failover `delayMs` after the Redis step starts. */
async function restoreWithFailover(delayMs: number): Promise<{ code: number | null; stdout: string; stderr: string; failedOver: boolean }> {
  let failedOver = false;
  let seen = '';
  const res = await runCli(['restore', '--plan', 'redis', '--yes', '--config', configFile], {
    cwd: ws.dir,
    onStderr: (chunk) => {
      seen += chunk;
      if (failedOver || !seen.includes(MARK)) return;
      failedOver = true;
      setTimeout(() => {
        const c = new Redis({ port: sentinels[0]!.port, lazyConnect: true });
        c.connect()
          .then(() => c.call('SENTINEL', 'FAILOVER', MASTER))
          .catch(() => undefined)
          .finally(() => c.disconnect());
      }, delayMs);
    },
  });
  return { ...res, failedOver };
}

beforeAll(async () => {
  const master = await startRedis();
  const replicas = await Promise.all([0, 1].map(() => startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] })));
  nodes = [master, ...replicas];
  sentinels = await Promise.all([0, 1, 2].map(() => startSentinel({ masterName: MASTER, master: { host: '127.0.0.1', port: master.port }, quorum: 2, downAfterMs: 2000 })));
  await seedTykRedis(master.port, { sessions: 30_000 });
  snapshotKeys = await dbsize(master.port);
  await until('replicas in sync', async () => (await Promise.all(replicas.map((r) => dbsize(r.port)))).every((n) => n === snapshotKeys));
  // Sentinels must know each other before they can agree on a failover.
  await until('sentinels see each other and the replicas', async () => {
    const c = new Redis({ port: sentinels[0]!.port, lazyConnect: true });
    await c.connect();
    const m = (await c.call('SENTINEL', 'master', MASTER)) as string[];
    c.disconnect();
    const f = Object.fromEntries(m.flatMap((v, i) => (i % 2 === 0 ? [[v, m[i + 1]]] : [])));
    return Number(f['num-other-sentinels']) === 2 && Number(f['num-slaves']) === 2;
  });
  ws = await makeWorkspace();
  configFile = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    sentinel:
      masterName: ${MASTER}
      sentinels: [${sentinels.map((s) => `{ host: 127.0.0.1, port: ${s.port} }`).join(', ')}]
    restore: { mode: live, classes: [must, should, quota, ephemeral, analytics, mdcb, other] }
restore: { reportDir: ./reports }
`,
  );
  const b = await runCli(['backup', '--config', configFile], { cwd: ws.dir });
  expect(b.code, b.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await Promise.all([...sentinels, ...nodes].map((s) => s.stop()));
  await ws?.cleanup();
});

describe('a Sentinel failover during a live restore', () => {
  it.each([
    ['as the Redis step starts', 0],
    ['later in the step (writes or checks)', 1500],
  ])('forced %s: the master at the end holds the snapshot, or the restore says so and a rerun does', async (_when, delayMs) => {
    // The disaster: every key gone from the master (and so from its replicas).
    const m = new Redis({ port: await currentMaster(), lazyConnect: true });
    await m.connect();
    await m.flushall();
    m.disconnect();
    const before = await currentMaster();
    const r = await restoreWithFailover(delayMs);
    expect(r.failedOver, r.stderr).toBe(true);
    await until('the failover to finish', async () => (await currentMaster()) !== before);
    if (r.code !== 0) {
      // A clear failure that names the failover; a rerun then restores everything.
      expect(r.stdout + r.stderr).toMatch(/fail(ed)? ?over/i);
      const again = await runCli(['restore', '--plan', 'redis', '--yes', '--config', configFile], { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(0);
    } else {
      const report = JSON.parse(await readFile(`${r.stdout.match(/Report: (\S+)\.html/)![1]!}.json`, 'utf8'));
      const failovers = report.steps.find((s: { id: string }) => s.id === 'redis').details.redis.failovers as string[];
      // When the failover landed inside the restore, it was seen and the restore redone on the new master.
      if (failovers.length > 0) expect(failovers[0]).toMatch(/^Sentinel failed over from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+/);
    }
    // Whatever happened, the master Sentinel names now holds every key, and keeps them once things settle.
    await until('every key on the current master', async () => (await dbsize(await currentMaster())) === snapshotKeys, 30_000);
    await new Promise((res) => setTimeout(res, 3000));
    expect(await dbsize(await currentMaster())).toBe(snapshotKeys);
  }, 240_000);
});

// After the failover tests: a replica detached and put back by Sentinel makes it slow to fail over again soon after.
describe('a replica Sentinel could promote, detached from the master (a failover under way)', () => {
  /**
   * Empties the master (the disaster), then does what a failover does first: REPLICAOF NO ONE on a replica. Sentinel
   * names a new master only later; until then it lists the replica, now an empty master, under the old one.
   */
  async function detachReplica(): Promise<RedisServer> {
    const master = await currentMaster();
    const m = new Redis({ port: master, lazyConnect: true });
    await m.connect();
    await m.flushall();
    m.disconnect();
    const replica = nodes.find((n) => n.port !== master)!;
    const r = new Redis({ port: replica.port, lazyConnect: true });
    await r.connect();
    await r.call('REPLICAOF', 'NO', 'ONE');
    await r.flushall();
    r.disconnect();
    return replica;
  }

  /**
   * Detaches a replica and restores, sending `sig` once the restore says it waits for the replicas. Under load Sentinel
   * may put the replica back before the restore looks, and there is then nothing to wait for: the restore succeeds and
   * the replica is detached again, up to 3 tries (1 run in 18 with two busy loops beside it).
   */
  async function restoreSignalledInWait(sig: NodeJS.Signals, env?: NodeJS.ProcessEnv) {
    const tries: string[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const replica = await detachReplica();
      let signalledAt = 0;
      const res = await runCli(['restore', '--plan', 'redis', '--yes', '--config', configFile], {
        cwd: ws.dir,
        ...(env ? { env } : {}),
        onStderr: (chunk, kill) => {
          if (signalledAt || !chunk.includes('waiting until no failover can lose the restored keys')) return;
          signalledAt = Date.now();
          kill(sig);
        },
      });
      if (signalledAt > 0) return { replica, res, signalledAt };
      expect(res.code, res.stderr).toBe(0);
      tries.push(res.stderr.split('\n').find((l) => /redis-replicas/.test(l)) ?? '(no redis-replicas line)');
    }
    throw new Error(`the restore never waited for the detached replica in 3 tries: ${tries.join(' | ')}`);
  }

  it('SIGTERM while the restore waits for that replica ends it within the grace (exit 130), saying what it waited for', async () => {
    const { replica, res, signalledAt: killedAt } = await restoreSignalledInWait('SIGTERM', { TYKDR_GRACE: '5' });
    expect(res.code, res.stderr).toBe(130);
    expect(Date.now() - killedAt).toBeLessThan(5000);
    // The line names the detached replica (beside the other one when it had not caught up yet either).
    expect(res.stderr).toMatch(new RegExp(`waiting until no failover can lose the restored keys \\(Sentinel lists [^)]*127\\.0\\.0\\.1:${replica.port}[^)]* as (a replica|replicas) of`));
    // Sentinel puts the replica back by itself; the next test starts from there.
    await until('the replica attached again', async () => {
      const r = new Redis({ port: replica.port, lazyConnect: true });
      await r.connect();
      const role = String(await r.info('replication'));
      r.disconnect();
      return /role:slave/.test(role) && /master_link_status:up/.test(role);
    });
  }, 240_000);

  it('the restore reports success only once that replica is attached again and holds every key', async () => {
    const replica = await detachReplica();
    const res = await runCli(['restore', '--plan', 'redis', '--yes', '--json', '--config', configFile], { cwd: ws.dir });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    // Right as it returns: the replica is attached again (Sentinel put it back) and holds the snapshot. (How long
    // tykdr waited depends on when Sentinel's poll saw the replica: under load it may have been back already.)
    const details = JSON.parse(res.stdout).report.steps.find((s: { id: string }) => s.id === 'redis').details.redis;
    const seen = JSON.stringify({ replicas_settled: details.replicas_settled, failovers: details.failovers });
    expect(await dbsize(replica.port), seen).toBe(snapshotKeys);
    expect(await dbsize(await currentMaster()), seen).toBe(snapshotKeys);
    // The wait ran. (Its last look may not list the replica: Sentinel flags it while it puts it back, and does not
    // promote a replica it flags.)
    expect(details.replicas_settled.waited_ms, seen).toBeGreaterThanOrEqual(0);
  }, 240_000);

  it('kill -9 while the restore waits for that replica: the journal names the killed restore, and --resume finishes it with every key on the master and the replica', async () => {
    const { replica, res: killed } = await restoreSignalledInWait('SIGKILL');
    expect(killed.signal, `${killed.code}\n${killed.stderr}`).toBe('SIGKILL');
    const dry = await runCli(['restore', '--plan', 'redis', '--dry-run', '--config', configFile], { cwd: ws.dir });
    expect(dry.stdout, dry.stdout + dry.stderr).toMatch(/PARTIAL: restore \S+ of snapshot \S+ \(plan .*\) was killed during step redis/);
    const resumed = await runCli(['restore', '--resume', '--json', '--config', configFile], { cwd: ws.dir });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(await dbsize(await currentMaster()), resumed.stderr).toBe(snapshotKeys);
    // Sentinel may still flag the replica it puts back when the resumed wait looks last (it does not promote a replica it
    // flags, so the wait does not count it): the replica holds every key once its sync ends.
    await until('the replica to hold every key', async () => (await dbsize(replica.port)) === snapshotKeys, 30_000);
  }, 240_000);
});
