import { describe, expect, it } from 'vitest';
import { mapConcurrent } from '../../src/core/util/pool.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mapConcurrent', () => {
  it('runs at most `limit` at a time and returns results in the items\' order', async () => {
    let running = 0;
    let most = 0;
    const out = await mapConcurrent([5, 1, 4, 2, 3, 0], 3, async (ms, i) => {
      running++;
      most = Math.max(most, running);
      await tick(ms * 3);
      running--;
      return `${i}:${ms}`;
    });
    expect(out).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3', '5:0']);
    expect(most).toBe(3);
  });

  it('rejects with the first failure once the calls already started have settled, starting none after it', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const err = await mapConcurrent([0, 1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      await tick(n === 1 ? 1 : 20);
      settled.push(n);
      if (n === 1) throw new Error('item 1 failed');
      return n;
    }).then(() => null, (e: Error) => e);
    expect(err?.message).toBe('item 1 failed');
    expect(started).toEqual([0, 1]);
    expect(settled.sort()).toEqual([0, 1]);
  });

  it('an empty list is an empty result', async () => {
    expect(await mapConcurrent([], 4, async () => 1)).toEqual([]);
  });
});
