import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector } from '../../src/daemon/leader.js';
import { jsonLogger } from '../../src/daemon/log.js';
import { redisLock, type LockRedisClient } from '../../src/daemon/redis-lock.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const KEY = 'tykdr:daemon:leader';
let redis: RedisServer;
const cleanup: Array<() => Promise<unknown> | void> = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
  await redis.cli('DEL', KEY);
});

function client(port = redis.port): Redis {
  const c = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 300, retryStrategy: (n) => Math.min(50 * n, 300) });
  c.on('error', () => undefined);
  return c;
}

function elector(id: string, ttlMs: number, c = client()) {
  const lines: Array<Record<string, unknown>> = [];
  const changes: Array<[boolean, string]> = [];
  /** When each change was reported (Date.now()), in the order of `changes`. */
  const changedAt: number[] = [];
  const lock = redisLock(c as unknown as LockRedisClient, KEY, `redis test key ${KEY}`);
  const e = new LeaderElector({
    lock,
    instanceId: id,
    ttlMs,
    log: jsonLogger({ write: (l) => lines.push(JSON.parse(l)) }),
    onChange: (leader, reason) => {
      changes.push([leader, reason]);
      changedAt.push(Date.now());
    },
  });
  cleanup.push(() => e.stop());
  return { e, lines, changes, changedAt, client: c };
}

async function until(cond: () => boolean, timeoutMs: number): Promise<number> {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t;
}

describe('leader election on a real Redis', () => {
  it('elects exactly one of several, with SET NX PX and the instance id in the value', async () => {
    const all = ['a', 'b', 'c'].map((id) => elector(id, 2000));
    all.forEach((x) => x.e.start());
    await until(() => all.some((x) => x.e.isLeader), 2000);
    // Every other instance has tried and seen the leader...
    await until(() => all.filter((x) => x.lines.some((l) => l.msg === 'another instance is leader')).length === 2, 2000);
    // ...and an observation window of several renewals and retries (every ttl/3 ~ 667 ms) is the point: still one leader.
    await new Promise((r) => setTimeout(r, 1500));
    expect(all.filter((x) => x.e.isLeader)).toHaveLength(1);
    const leader = all.find((x) => x.e.isLeader)!;
    expect(await redis.cli('GET', KEY)).toBe(leader.e.token);
    expect(leader.e.token.split(' ')[0]).toMatch(/^[abc]$/);
    const pttl = Number(await redis.cli('PTTL', KEY));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(2000);
    expect(leader.lines.some((l) => l.msg === 'became leader')).toBe(true);
    const followers = all.filter((x) => x !== leader);
    expect(followers.every((f) => f.lines.some((l) => l.msg === 'another instance is leader' && l.leader === leader.e.token.split(' ')[0]))).toBe(true);
  });

  it('releases on stop (compare-and-delete) so a follower takes over within ttl/3', async () => {
    const a = elector('a', 1500);
    a.e.start();
    await until(() => a.e.isLeader, 1000);
    const b = elector('b', 1500);
    b.e.start();
    await until(() => b.lines.some((l) => l.msg === 'another instance is leader'), 1000);
    expect(b.e.isLeader).toBe(false);
    const term = a.e.termSignal;
    await a.e.stop();
    expect(term.aborted).toBe(true);
    expect(a.lines.some((l) => l.msg === 'released the leader lock')).toBe(true);
    // Released, not expired: b leads before a's 1.5 s lease could have run out on its own.
    const took = await until(() => b.e.isLeader, 1500);
    expect(took).toBeLessThan(1500);
  });

  it('a leader that dies without releasing is replaced right after its lease ends (within the TTL)', async () => {
    const a = elector('a', 2000);
    a.e.start();
    await until(() => a.e.isLeader, 1000);
    const b = elector('b', 2000);
    b.e.start();
    await until(() => b.lines.some((l) => l.msg === 'another instance is leader'), 1000);
    // "SIGKILL": a's process vanishes: no more renewals, no release.
    a.client.disconnect();
    const died = Date.now();
    // Liveness, not speed: b takes over once the 2 s lease has run out. The bound is generous (a loaded
    // 2-core machine delays timers); what must never happen is a takeover while the lease still holds,
    // which the compare-and-renew tests below cover.
    await until(() => b.e.isLeader, 8000);
    expect(Date.now() - died).toBeLessThanOrEqual(2 * 2000 + 4000);
    expect(await redis.cli('GET', KEY)).toBe(b.e.token);
  });

  it('stops leading at once when the lock is taken by someone else (compare-and-renew fails)', async () => {
    const a = elector('a', 1500);
    a.e.start();
    await until(() => a.e.isLeader, 1000);
    const term = a.e.termSignal;
    await redis.cli('SET', KEY, 'intruder 0000', 'PX', '60000');
    await until(() => !a.e.isLeader, 1000);
    expect(term.aborted).toBe(true);
    expect(String((term.reason as Error).message)).toContain('taken over or expired');
    expect(a.changes.at(-1)).toEqual([false, 'the lock was taken over or expired']);
    // It does not delete someone else's lock when it stops.
    await a.e.stop();
    expect(await redis.cli('GET', KEY)).toBe('intruder 0000');
  });

  it('stops leading before its lease ends when Redis is unreachable, and leads again when it is back', async () => {
    const r2 = await startRedis();
    cleanup.push(() => r2.stop());
    const a = elector('a', 1500, client(r2.port));
    a.e.start();
    await until(() => a.e.isLeader, 1000);
    const term = a.e.termSignal;
    await r2.cli('CLIENT', 'PAUSE', '3000', 'ALL'); // renewals time out
    const t = Date.now();
    await until(() => !a.e.isLeader, 2000);
    // When it stepped down, not when the 20 ms poll above noticed; t is taken after the last renewal was sent.
    expect(a.changedAt.at(-1)! - t).toBeLessThan(1500);
    expect(term.aborted).toBe(true);
    expect(a.lines.some((l) => l.msg === 'stopped being leader' && l.reason === 'the lease ran out before a renewal succeeded')).toBe(true);
    await until(() => a.e.isLeader, 5000);
  });

  it('two processes with the same instance id never both lead (the value carries a nonce)', async () => {
    const x = elector('same', 1500);
    const y = elector('same', 1500);
    x.e.start();
    y.e.start();
    // Both have contended: one leads, the other saw the lock held (same id, different nonce)...
    await until(() => [x, y].some((z) => z.e.isLeader) && [x, y].some((z) => z.lines.some((l) => l.msg === 'another instance is leader')), 2000);
    // ...and the observation window across renewals (every 500 ms) is the point: never both.
    await new Promise((r) => setTimeout(r, 1200));
    expect([x.e.isLeader, y.e.isLeader].filter(Boolean)).toHaveLength(1);
  });
});
