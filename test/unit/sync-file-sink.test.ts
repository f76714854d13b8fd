import { readdirSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncFileSink, WRITE_MAX } from '../../src/core/util/sync-file-sink.js';
import { useCleanups } from '../helpers/cleanups.js';

// Every write the sink makes, as (bytes, buffers): node's own functions do the writing.
const calls = vi.hoisted(() => [] as Array<{ bytes: number; buffers: number }>);
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    writeSync: (fd: number, buf: Buffer) => {
      calls.push({ bytes: buf.length, buffers: 1 });
      return fs.writeSync(fd, buf);
    },
    writevSync: (fd: number, bufs: Buffer[]) => {
      calls.push({ bytes: bufs.reduce((a, b) => a + b.length, 0), buffers: bufs.length });
      return fs.writevSync(fd, bufs);
    },
  };
});

const { tempDir } = useCleanups();
beforeEach(() => {
  calls.length = 0;
});
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

  it('writes large chunks and batches whole, each write at most WRITE_MAX bytes and 1024 buffers', async () => {
    // One chunk of several WRITE_MAX and a bit; chunks that straddle the limit; empty ones; then 3,000 tiny ones, more
    // than one writev may take.
    const chunks = [
      Buffer.alloc(3 * WRITE_MAX + 17, 3),
      ...Array.from({ length: 9 }, (_, i) => Buffer.alloc(WRITE_MAX / 2 + 1001 * i, i + 1)),
      Buffer.alloc(0),
      ...Array.from({ length: 3000 }, (_, i) => Buffer.alloc(7, i % 256)),
      Buffer.alloc(0),
    ];
    const file = path.join(dir, 'large');
    const sink = new SyncFileSink(file, { flags: 'wx', mode: 0o600 });
    // All of it in one batch (corked): the batching the cap has to cut.
    sink.cork();
    for (const c of chunks) sink.write(c);
    sink.uncork();
    sink.end();
    await finished(sink);
    const whole = Buffer.concat(chunks);
    expect((await readFile(file)).equals(whole)).toBe(true);
    expect(calls.reduce((a, c) => a + c.bytes, 0)).toBe(whole.length);
    expect(Math.max(...calls.map((c) => c.bytes))).toBeLessThanOrEqual(WRITE_MAX);
    expect(Math.max(...calls.map((c) => c.buffers))).toBeLessThanOrEqual(1024);
    expect(calls.some((c) => c.buffers === 1024)).toBe(true);
    expect(calls.length).toBeGreaterThanOrEqual(Math.ceil(whole.length / WRITE_MAX));
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
