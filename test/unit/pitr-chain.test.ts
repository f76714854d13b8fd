import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/core/age/index.js';
import { ChainWriter, CoverageTracker } from '../../src/core/pitr/chain.js';
import { chainKey, segmentMetaKey } from '../../src/core/layout.js';
import { LocalStore } from '../../src/backends/stores/local-store.js';

describe('SegmentWriter marks', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tykdr-chain-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const writer = () =>
    new ChainWriter(
      { format: 'tykdr-chain/1', chain: 'c1', base_snapshot: 'c1', component: 'redis', replid: 'a'.repeat(40), base_offset: 0, base_at: new Date(0).toISOString() },
      { store: new LocalStore(dir), compression: { algorithm: 'zstd', level: 3 }, keys: { recipients: [generateIdentity().recipient] } },
    );

  it('never dates a byte earlier than it arrived: every mark covers only bytes that had arrived by its time', async () => {
    const seg = writer().open(1, 'a'.repeat(40), 1000);
    // Arrivals: 10 bytes at t=1000, 10 more at t=1005 (same 10 ms window), 10 more at t=1020.
    const arrivals: Array<[number, number]> = [];
    let total = 0;
    for (const ms of [1000, 1005, 1020]) {
      seg.write(Buffer.alloc(10, 0x0a), 1, ms);
      total += 10;
      arrivals.push([total, ms]);
    }
    const rec = await seg.close(1030);
    for (const [bytes, ms] of rec.marks) {
      // Every byte before `bytes` must have arrived by `ms`.
      const arrivedBy = arrivals.find(([b]) => b >= bytes)![1];
      expect(arrivedBy, `mark [${bytes}, ${ms}]`).toBeLessThanOrEqual(ms);
    }
  });
});

describe('CoverageTracker', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tykdr-coverage-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports coverage only up to the first missing segment, not up to a stranded later one', async () => {
    const store = new LocalStore(dir);
    const chain = '20261121T093012Z-4f9a1c';
    const put = (key: string, v: unknown) => store.put(key, Readable.from([Buffer.from(JSON.stringify(v))]));
    await put(chainKey(chain), { format: 'tykdr-chain/1', chain, base_snapshot: chain, component: 'redis', replid: 'a'.repeat(40), base_offset: 100, base_at: '2026-11-21T09:30:12.000Z' });
    const seg = (seq: number, start: number, end: number, to: string) => ({
      chain,
      seq,
      name: `seg-${String(seq).padStart(8, '0')}.resp.zst.age`,
      compression: 'zstd',
      replid: 'a'.repeat(40),
      start_offset: start,
      end_offset: end,
      from: '2026-11-21T09:30:12.000Z',
      to,
      marks: [[end - start + 1, Date.parse(to)]],
      commands: 1,
      plaintext_bytes: end - start + 1,
      stored_bytes: 10,
      sha256: '0'.repeat(64),
    });
    await put(segmentMetaKey(chain, 1), seg(1, 101, 200, '2026-11-21T09:31:00.000Z'));
    // Segment 2 was never stored (its upload failed); segment 3 was.
    await put(segmentMetaKey(chain, 3), seg(3, 301, 400, '2026-11-21T09:33:00.000Z'));
    const [c] = await new CoverageTracker(store).refresh();
    expect(c!.coveredTo.toISOString()).toBe('2026-11-21T09:31:00.000Z');
    expect(c!.seq).toBe(1);
  });
});
