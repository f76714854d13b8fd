import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/core/age/index.js';
import { ChainWriter } from '../../src/core/pitr/chain.js';
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
