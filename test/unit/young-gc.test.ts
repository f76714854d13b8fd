import { constants, PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkBytesMoved, canCollect, COLLECT_EVERY_BYTES } from '../../src/core/util/young-gc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const arrayBuffersMB = () => process.memoryUsage().arrayBuffers / 1e6;

/** Every garbage collection of this process, as perf_hooks reports them (kind: minor, major...). */
const gcs: PerformanceEntry[] = [];
const observer = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
beforeAll(() => observer.observe({ entryTypes: ['gc'] }));
afterAll(() => observer.disconnect());

/** The collections that started between two instants, once perf_hooks has delivered them. */
async function collectionsBetween(from: number, to: number): Promise<Array<{ minor: boolean }>> {
  await sleep(100);
  return gcs
    .filter((e) => e.startTime >= from && e.startTime <= to)
    .map((e) => ({ minor: (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR }));
}

describe('dropped chunks are collected every COLLECT_EVERY_BYTES of bulk bytes (util/young-gc.ts)', () => {
  it('a minor collection can be asked for on this node, and no other context gains a gc global', () => {
    const hadGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    expect(canCollect()).toBe(true);
    if (!hadGc) {
      expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
      expect(vm.runInNewContext('typeof gc')).toBe('undefined');
    }
  });

  it('below the threshold no collection runs; the call that reaches it runs one minor collection', async () => {
    bulkBytesMoved(COLLECT_EVERY_BYTES); // the count back to 0
    await sleep(50);
    // Neither call allocates: a collection inside one of them is the module's, not V8's own.
    const t0 = performance.now();
    bulkBytesMoved(COLLECT_EVERY_BYTES - 1);
    const t1 = performance.now();
    bulkBytesMoved(1);
    const t2 = performance.now();
    expect(await collectionsBetween(t0, t1)).toEqual([]);
    expect(await collectionsBetween(t1, t2)).toEqual([{ minor: true }]);
  });

  it('the collection frees Buffers already dropped: their memory goes', async () => {
    bulkBytesMoved(COLLECT_EVERY_BYTES); // an empty young generation and the count at 0
    await sleep(100);
    (() => {
      for (let i = 0; i < 64; i++) Buffer.alloc(256 * 1024, 1); // 16 MB, dropped at once
    })();
    const before = arrayBuffersMB();
    bulkBytesMoved(COLLECT_EVERY_BYTES);
    // V8's sweeper frees the memory of what the collection found dead on another thread, a moment later.
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && before - arrayBuffersMB() < 12) await sleep(50);
    expect(before - arrayBuffersMB()).toBeGreaterThan(12);
  });
});
