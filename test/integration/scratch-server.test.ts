import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScratch } from '../../src/backends/redis/target/scratch-server.js';
import { TykdrError } from '../../src/core/errors.js';

/** The scratch redis-server (live restores of an AOF, file-mode evidence): a real start, and a binary that is not there. */
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function dir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'tykdr-scratch-'));
  dirs.push(d);
  return path.join(d, 'run');
}

describe('startScratch', () => {
  it('starts an empty redis-server that answers, and stops it', async () => {
    const s = await startScratch({ bin: 'redis-server', dir: await dir(), databases: 16, loadTimeoutMs: 30_000, where: 'components.redis.restore' });
    try {
      const c = await s.pool.db(0);
      expect(await c.ping()).toBe('PONG');
      expect(s.version).toMatch(/^\d+\.\d+/);
    } finally {
      await s.stop();
    }
  });

  it('a redisServer that does not exist: badInput naming it and the setting, at once', async () => {
    const t0 = Date.now();
    const err = await startScratch({ bin: '/nonexistent/redis-server', dir: await dir(), databases: 16, loadTimeoutMs: 60_000, where: 'components.redis.restore' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('badInput');
    expect((err as TykdrError).message).toBe('components.redis.restore.redisServer "/nonexistent/redis-server" was not found');
    // Not after the load timeout: the spawn error ends the wait (a generous bound, not a speed claim).
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});
