import { readdirSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { SyncFileSink, upTo, WRITE_MAX } from '../../src/core/util/sync-file-sink.js';
import { useCleanups } from '../helpers/cleanups.js';

const { tempDir } = useCleanups();
let dir: string;
const openFds = () => readdirSync('/proc/self/fd').length;

beforeAll(async () => {
  dir = await tempDir('tykdr-sink-');
});

describe('SyncFileSink', () => {
  it('writes every chunk in order, single writes and batched ones, with the mode asked', async () => {
    const chunks = Array.from({ length: 300 }, (_, i) => Buffer.alloc(1 + ((i * 7919) % 70_000), i % 251));
    const file = path.join(dir, 'a');
    const sink = new SyncFileSink(file, { flags: 'wx', mode: 0o600 });
    let batched = 0;
    const writev = sink._writev.bind(sink);
    sink._writev = (c, done) => {
      batched += c.length;
      writev(c, done);
    };
    // Chunks written before the file is open are buffered, and go out together in one writev.
    await pipeline(Readable.from(chunks), sink);
    expect((await readFile(file)).equals(Buffer.concat(chunks))).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(batched).toBeGreaterThan(0);
  });

  it('writes large chunks and batches whole, in writes of at most WRITE_MAX', async () => {
    // One chunk of several WRITE_MAX and a bit, then a batch whose chunks straddle the limit.
    const chunks = [Buffer.alloc(3 * WRITE_MAX + 17, 3), ...Array.from({ length: 9 }, (_, i) => Buffer.alloc(WRITE_MAX / 2 + 1001 * i, i + 1))];
    const file = path.join(dir, 'large');
    await pipeline(Readable.from(chunks), new SyncFileSink(file, { flags: 'wx', mode: 0o600 }));
    expect((await readFile(file)).equals(Buffer.concat(chunks))).toBe(true);

    const bufs = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')];
    expect(Buffer.concat(upTo(bufs, 4)).toString()).toBe('abcd');
    expect(Buffer.concat(upTo(bufs, 8)).toString()).toBe('abcdefgh');
    expect(upTo(bufs, 8)).toHaveLength(2);
    expect(Buffer.concat(upTo(bufs, 100)).toString()).toBe('abcdefghij');
    // Views of the chunks, not copies.
    expect(upTo(bufs, 4)[1]!.buffer).toBe(bufs[1]!.buffer);
  });

  it('refuses an existing file with wx, leaving it as it was, and holds no descriptor', async () => {
    const file = path.join(dir, 'exists');
    await writeFile(file, 'before');
    const before = openFds();
    const err = await pipeline(Readable.from([Buffer.from('after')]), new SyncFileSink(file, { flags: 'wx', mode: 0o600 })).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('EEXIST');
    expect(await readFile(file, 'utf8')).toBe('before');
    expect(openFds()).toBe(before);
  });

  it('closes its file when destroyed before the end', async () => {
    const file = path.join(dir, 'destroyed');
    const before = openFds();
    const sink = new SyncFileSink(file, { flags: 'wx', mode: 0o600 });
    await new Promise<void>((resolve) => sink.write(Buffer.alloc(1000, 1), () => resolve()));
    expect(openFds()).toBe(before + 1);
    sink.destroy();
    await new Promise((r) => sink.once('close', r));
    expect(openFds()).toBe(before);
    expect((await stat(file)).size).toBe(1000);
  });
});
