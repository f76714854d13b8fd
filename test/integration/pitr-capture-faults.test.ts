import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { captureRedis } from '../../src/backends/redis/pitr/capture.js';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { generateIdentity } from '../../src/core/age/index.js';
import { ChainWriter, type SegmentRecord } from '../../src/core/pitr/chain.js';
import { useCleanups } from '../helpers/cleanups.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { redisComponent } from '../helpers/redis-cluster.js';
import { startRedis } from '../helpers/redis-server.js';

const { cleanups, tempDir } = useCleanups();

describe('point-in-time capture faults', () => {
  it('reconnects when the master dropped the feed while the base snapshot was still being stored', async () => {
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const store = new LocalStore(await tempDir('tykdr-pitr-faults-'));
    const writer = new Redis({ port: server.port });
    cleanups.push(async () => writer.disconnect());
    await writer.set('before', '1');
    const ac = new AbortController();
    const segments: SegmentRecord[] = [];
    const connected: string[] = [];
    const capture = captureRedis({
      cfg: redisComponent(`host: 127.0.0.1\nport: ${server.port}`),
      backup: async (source, signal) => {
        const a = await source.open(signal);
        await pipeline(a.stream, async function* (s) {
          for await (const _ of s) {
            // drained
          }
        });
        await a.finish();
        // The RDB has been read; while the base is still being stored the master drops this replica
        // (repl-timeout, its output buffer limit, a network fault).
        await writer.client('KILL', 'TYPE', 'replica');
        await new Promise((r) => setTimeout(r, 300));
        return { id: 'base1', consistentAt: a.consistentAt.toISOString() };
      },
      startChain: (record) => ChainWriter.start(record, { store, compression: { algorithm: 'zstd', level: 1 }, keys: { recipients: [generateIdentity().recipient] } }),
      segmentMs: 500,
      segmentBytes: 1 << 20,
      signal: ac.signal,
      events: {
        connected: (e) => connected.push(e.kind),
        segment: (rec) => segments.push(rec),
      },
    });
    while (connected.length === 0) await new Promise((r) => setTimeout(r, 100));
    await writer.set('after', '2');
    const target = Number(/master_repl_offset:(\d+)/.exec(await writer.info('replication'))![1]);

    const giveUp = setTimeout(() => ac.abort(), 20_000);
    while (!ac.signal.aborted && !segments.some((s) => s.end_offset >= target)) await new Promise((r) => setTimeout(r, 200));
    clearTimeout(giveUp);
    const stoppedEarly = ac.signal.aborted;
    ac.abort();
    await capture;
    expect(stoppedEarly, `the capture never read the feed again (connections: ${connected.join(', ')})`).toBe(false);
    expect(connected).toEqual(['full', 'continue']);
    expect(Math.max(...segments.map((s) => s.end_offset))).toBeGreaterThanOrEqual(target);
  }, 60_000);
  it('closes the replica connection when it is stopped while the base is being stored (after its RDB was read)', async () => {
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const store = new LocalStore(await tempDir('tykdr-pitr-faults-'));
    const writer = new Redis({ port: server.port });
    cleanups.push(async () => writer.disconnect());
    const ac = new AbortController();
    let rdbRead = false;
    const capture = captureRedis({
      cfg: redisComponent(`host: 127.0.0.1\nport: ${server.port}`),
      backup: async (source, signal) => {
        const a = await source.open(signal);
        await pipeline(a.stream, async function* (s) {
          for await (const _ of s) {
            // drained
          }
        });
        rdbRead = true;
        // Still storing the base (a slow upload) when SIGTERM comes.
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
        throw new Error('unreachable');
      },
      startChain: (record) => ChainWriter.start(record, { store, compression: { algorithm: 'zstd', level: 1 }, keys: { recipients: [generateIdentity().recipient] } }),
      segmentMs: 500,
      segmentBytes: 1 << 20,
      signal: ac.signal,
    });
    while (!rdbRead) await new Promise((r) => setTimeout(r, 50));
    expect(await writer.info('replication')).toMatch(/connected_slaves:1/);
    ac.abort();
    await capture;
    // The master sees the replica go (within a few seconds; a connection left open would stay listed).
    let info = '';
    for (let i = 0; i < 50; i++) {
      info = await writer.info('replication');
      if (/connected_slaves:0/.test(info)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(info).toMatch(/connected_slaves:0/);
  }, 60_000);
  it('counts a master that stopped sending (a frozen network path) as lost after the idle timeout, although its own ACKs still go out', async () => {
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const proxy = await startFaultProxy({ port: server.port });
    cleanups.push(() => proxy.close());
    const store = new LocalStore(await tempDir('tykdr-pitr-faults-'));
    const ac = new AbortController();
    const connected: string[] = [];
    const disconnected: string[] = [];
    const capture = captureRedis({
      cfg: redisComponent(`host: 127.0.0.1\nport: ${proxy.port}`),
      backup: async (source, signal) => {
        const a = await source.open(signal);
        await pipeline(a.stream, async function* (s) {
          for await (const _ of s) {
            // drained
          }
        });
        await a.finish();
        return { id: 'base1', consistentAt: a.consistentAt.toISOString() };
      },
      startChain: (record) => ChainWriter.start(record, { store, compression: { algorithm: 'zstd', level: 1 }, keys: { recipients: [generateIdentity().recipient] } }),
      segmentMs: 500,
      segmentBytes: 1 << 20,
      idleTimeoutMs: 2000,
      signal: ac.signal,
      events: {
        connected: (e) => connected.push(e.kind),
        disconnected: (e) => disconnected.push(e.reason),
      },
    });
    while (connected.length === 0) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    proxy.freeze();
    const giveUp = setTimeout(() => ac.abort(), 15_000);
    while (!ac.signal.aborted && disconnected.length === 0) await new Promise((r) => setTimeout(r, 200));
    clearTimeout(giveUp);
    ac.abort();
    await capture;
    expect(disconnected[0], 'the capture never noticed that nothing arrived').toMatch(/no byte from the master for 2 s/);
  }, 60_000);
});
