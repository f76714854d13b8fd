import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Tap } from '../../src/core/pipeline.js';
import { bulkBytesMoved, canCollect, COLLECT_EVERY_BYTES } from '../../src/core/util/young-gc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const arrayBuffersMB = () => process.memoryUsage().arrayBuffers / 1e6;

/**
 * After a collection, makes 16 MB of 256 KiB Buffers and drops them (less than V8's own trigger for outside memory), runs `between`,
 * then gives V8's concurrent sweeper time to free what a collection found dead: `expectFreed`, up to 3 s for the
 * outside memory to fall under 4 MB; else 400 ms. Returns the outside memory before and after.
 */
async function dropThenWait(between: () => unknown, expectFreed: boolean): Promise<{ before: number; after: number }> {
  // A collection first (it also sets the count back to 0): the young generation starts empty, so none of V8's own
  // collections falls between the drop and the measure.
  bulkBytesMoved(COLLECT_EVERY_BYTES);
  await sleep(100);
  (() => {
    for (let i = 0; i < 64; i++) Buffer.alloc(256 * 1024, 1);
  })();
  await sleep(0);
  const before = arrayBuffersMB();
  await between();
  const until = Date.now() + (expectFreed ? 3000 : 400);
  do await sleep(50);
  while (Date.now() < until && !(expectFreed && arrayBuffersMB() < 4));
  return { before, after: arrayBuffersMB() };
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

  it('dropped Buffers stay until a collection; once the count passes the threshold, they are freed', async () => {
    // The control: nothing asks for a collection, and the dropped memory is still held.
    const idle = await dropThenWait(() => undefined, false);
    expect(idle.before).toBeGreaterThan(16);
    expect(idle.after).toBeGreaterThan(16);
    const counted = await dropThenWait(() => bulkBytesMoved(COLLECT_EVERY_BYTES), true);
    expect(counted.before).toBeGreaterThan(16);
    expect(counted.after).toBeLessThan(4);
  });

  it('a bulk Tap counts its chunks: 8 MiB through it free what was dropped before, and every byte passes unchanged', async () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const n = COLLECT_EVERY_BYTES / chunk.length;
    let seen = 0;
    let same = true;
    const { before, after } = await dropThenWait(() =>
      pipeline(
        Readable.from(
          (function* () {
            for (let i = 0; i < n; i++) yield chunk;
          })(),
        ),
        new Tap({ bulk: true }),
        new Writable({
          write(c: Buffer, _e, cb) {
            seen += c.length;
            same &&= c.equals(chunk);
            cb();
          },
        }),
      ),
      true,
    );
    expect(seen).toBe(COLLECT_EVERY_BYTES);
    expect(same).toBe(true);
    expect(before).toBeGreaterThan(16);
    expect(after).toBeLessThan(4);
  });
});
