import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const moved = vi.hoisted(() => ({ calls: [] as number[] }));
vi.mock('../../src/core/util/young-gc.js', () => ({ bulkBytesMoved: (n: number) => void moved.calls.push(n), COLLECT_EVERY_BYTES: 8 * 1024 * 1024 }));

const { Tap } = await import('../../src/core/pipeline.js');

async function through(tap: InstanceType<typeof Tap>, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    tap,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

describe('Tap: a bulk tap counts every chunk for util/young-gc.ts, and changes no byte', () => {
  beforeEach(() => void (moved.calls.length = 0));
  const chunks = [Buffer.from('abc'), Buffer.alloc(70_000, 1), Buffer.from('de')];

  it('bulk: each chunk\'s length is counted once, in order', async () => {
    const tap = new Tap({ bulk: true, sha256: true });
    const out = await through(tap, chunks);
    expect(out.equals(Buffer.concat(chunks))).toBe(true);
    expect(moved.calls).toEqual([3, 70_000, 2]);
    expect(tap.bytes).toBe(70_005);
  });

  it('not bulk (the default): nothing counted', async () => {
    const out = await through(new Tap(), chunks);
    expect(out.equals(Buffer.concat(chunks))).toBe(true);
    expect(moved.calls).toEqual([]);
  });
});
