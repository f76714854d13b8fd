import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { sideStream, tee } from '../../src/backends/redis/target/replication-load.js';

/**
 * tee() sends every chunk on and to a side reader (the evidence read beside a load, the read while staging), waiting for
 * the side to drain. A side whose reader failed mid-stream is destroyed and never drains: the main stream must go on.
 */
describe('tee', () => {
  it('goes on when the side is destroyed while a chunk waits for it to drain (its reader failed mid-stream)', async () => {
    const side = new PassThrough({ highWaterMark: 16 });
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(64, i));
    let passed = 0;
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        passed += c.length;
        cb();
      },
    });
    // The side is never read: the first chunk fills it, and the tee waits for a drain. Then its "reader" fails.
    setTimeout(() => side.destroy(new Error('the reader failed')), 50);
    side.on('error', () => undefined);
    await Promise.race([
      pipeline(Readable.from(chunks), tee(side), sink),
      new Promise((_r, reject) => setTimeout(() => reject(new Error('the main stream is stuck waiting for the side')), 5_000)),
    ]);
    expect(passed).toBe(50 * 64);
  });

  it('hands the side every chunk and its end when it keeps up', async () => {
    const side = new PassThrough({ highWaterMark: 16 });
    const got: Buffer[] = [];
    side.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise((r) => side.once('end', r));
    const chunks = Array.from({ length: 20 }, (_, i) => Buffer.alloc(64, i));
    await pipeline(Readable.from(chunks), tee(side), new Writable({ write: (_c, _e, cb) => cb() }));
    await ended;
    expect(Buffer.concat(got)).toEqual(Buffer.concat(chunks));
  });
});

describe('sideStream', () => {
  it('gives a for-await reader each chunk as it was written (no copy into one buffer), and holds back a writer that runs ahead', async () => {
    const side = sideStream();
    const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(1000 + i, i));
    // Written before any read: a byte stream would hand them to the iterator as one concatenated copy.
    for (const c of chunks) side.write(c);
    side.end();
    const got: Buffer[] = [];
    for await (const c of side) got.push(c as Buffer);
    expect(got).toHaveLength(5);
    got.forEach((c, i) => expect(c).toBe(chunks[i]));

    // Unread, it takes 8 chunks on its readable side and 4 MiB on its writable side, then asks the writer to wait.
    const full = sideStream();
    let accepted = 0;
    while (full.write(Buffer.alloc(1 << 20))) accepted++;
    expect(accepted).toBeGreaterThanOrEqual(8);
    expect(accepted).toBeLessThanOrEqual(8 + 4);
    full.destroy();
  });
});
