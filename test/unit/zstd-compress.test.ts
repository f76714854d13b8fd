import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { decompress } from 'zstd-napi';
import { ZstdCompressStream } from '../../src/core/zstd-compress.js';

async function compressChunks(chunks: Buffer[], nbWorkers: number): Promise<{ out: Buffer; pieces: number[] }> {
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    new ZstdCompressStream({ level: 1, nbWorkers }),
    new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }),
  );
  return { out: Buffer.concat(parts), pieces: parts.map((p) => p.length) };
}

describe('ZstdCompressStream', () => {
  it('writes one zstd frame that decompresses to the input, for empty, small, compressible and random input', async () => {
    const text = Buffer.from('apikey-0123456789abcdef {"org_id":"o1","expires":0} '.repeat(40_000));
    const cases: Buffer[][] = [[], [Buffer.alloc(0)], [Buffer.from('x')], [text], [randomBytes(3 * 1024 * 1024 + 17)]];
    for (const nbWorkers of [0, 1]) {
      for (const input of cases) {
        const chunks = input.flatMap((b) => Array.from({ length: Math.ceil(b.length / 40_000) || 1 }, (_, i) => b.subarray(i * 40_000, (i + 1) * 40_000)));
        const { out, pieces } = await compressChunks(chunks, nbWorkers);
        const whole = Buffer.concat(input);
        expect(decompress(out).equals(whole)).toBe(true);
        // Full 256 KiB buffers, then the rest: random input is bigger compressed, so several are full.
        expect(pieces.slice(0, -1).every((n) => n === 256 * 1024)).toBe(true);
        if (whole.length > 3 * 1024 * 1024) expect(pieces.length).toBeGreaterThan(10);
      }
    }
  });
});
