import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { captureRedis } from '../../src/backends/redis/pitr/capture.js';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { generateIdentity } from '../../src/core/age/index.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { ChainWriter, type SegmentRecord } from '../../src/core/pitr/chain.js';
import { useCleanups } from '../helpers/cleanups.js';
import { redisComponent } from '../helpers/redis-cluster.js';
import { startRedis } from '../helpers/redis-server.js';

const { cleanups, tempDir } = useCleanups();

/** A local store whose segment uploads do not read a byte until `open()`: a store that is behind. */
function slowStore(root: string): Store & { open(): void } {
  const inner = new LocalStore(root);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  return Object.assign(Object.create(inner) as Store, {
    open,
    put: async (key: string, body: Readable, opts?: { signal?: AbortSignal; contentType?: string }) => {
      if (/\/seg-\d{8}\.resp\./.test(key)) await gate;
      return inner.put(key, body, opts);
    },
  });
}

describe('point-in-time capture when the store is behind', () => {
  it('keeps reading the feed after a segment that filled while the store was behind is closed', async () => {
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const store = slowStore(await tempDir('tykdr-pitr-bp-'));
    const writer = new Redis({ port: server.port });
    cleanups.push(async () => writer.disconnect());
    const ac = new AbortController();
    const segments: SegmentRecord[] = [];
    let notify = () => {};
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
        return { id: 'base1', consistentAt: a.consistentAt.toISOString() };
      },
      startChain: (record) => ChainWriter.start(record, { store, compression: { algorithm: 'zstd', level: 1 }, keys: { recipients: [generateIdentity().recipient] } }),
      segmentMs: 1000,
      segmentBytes: 16 << 20,
      signal: ac.signal,
      events: {
        segment: (rec) => {
          segments.push(rec);
          notify();
        },
      },
    });
    const reached = async (offset: number) => {
      while (!segments.some((s) => s.end_offset >= offset)) {
        await new Promise<void>((r) => {
          notify = r;
          setTimeout(r, 500);
        });
        if (ac.signal.aborted) return;
      }
    };
    // Wait for the base (the capture is attached once the master lists a replica online).
    while (!/slave0:.*state=online/.test(await writer.info('replication'))) await new Promise((r) => setTimeout(r, 100));

    // 16 MB of incompressible values while the store reads nothing: the segment's body fills and the socket
    // pauses for it; the segment is closed on time (1 s) while still full, before the store catches up.
    for (let i = 0; i < 64; i++) await writer.set(`big:${i}`, randomBytes(256 * 1024));
    await new Promise((r) => setTimeout(r, 3000));
    store.open();
    for (let i = 0; i < 8; i++) await writer.set(`after:${i}`, randomBytes(256 * 1024));
    const target = Number(/master_repl_offset:(\d+)/.exec(await writer.info('replication'))![1]);

    // The capture must archive every byte up to the master's offset (within the test's own timeout).
    const giveUp = setTimeout(() => ac.abort(), 30_000);
    await reached(target);
    clearTimeout(giveUp);
    const stoppedEarly = ac.signal.aborted;
    ac.abort();
    await capture;
    expect(stoppedEarly, 'the capture stalled: no segment reached the master offset').toBe(false);
    expect(Math.max(...segments.map((s) => s.end_offset))).toBeGreaterThanOrEqual(target);
  }, 90_000);
});
