import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compress } from 'zstd-napi';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { TykdrError } from '../../src/core/errors.js';
import type { Manifest } from '../../src/core/manifest.js';
import type { DecryptionKeys } from '../../src/core/restore/decryption-keys.js';
import { stageArtifact } from '../../src/core/restore/staging.js';
import { WorkerDecompressStream } from '../../src/core/zstd-worker.js';
import { ZstdCompressStream } from '../../src/core/zstd-compress.js';
import { SyncFileSink } from '../../src/core/util/sync-file-sink.js';
import { storedArtifact } from '../helpers/manifest-fixture.js';

/** Compressible but not trivial (about 3:2): one 4 KiB block in three random, the others text, like an RDB of sessions. */
function sample(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let at = 0, i = seed; at < bytes; at += 4096, i++) {
    const end = Math.min(bytes, at + 4096);
    if (i % 3 === 0) randomBytes(end - at).copy(out, at);
    else out.fill(`{"session":${i % 97},"org":"tyk"}`, at, end);
  }
  return out;
}

/** Feeds `input` in chunks of varied sizes (1 byte to ~300 KiB). */
function chunked(input: Buffer): Readable {
  const parts: Buffer[] = [];
  let s = 7;
  for (let at = 0; at < input.length; ) {
    s = (s * 69069 + 1) >>> 0;
    const n = s % 5 === 0 ? 1 : 1 + (s % 300_000);
    parts.push(input.subarray(at, at + n));
    at += n;
  }
  return Readable.from(parts);
}

async function collect(src: Readable, slowMs = 0): Promise<{ out: Buffer; maxChunk: number }> {
  const chunks: Buffer[] = [];
  let maxChunk = 0;
  const sink = new Writable({
    write(c: Buffer, _e, done) {
      chunks.push(c);
      maxChunk = Math.max(maxChunk, c.length);
      if (slowMs > 0) setTimeout(done, slowMs);
      else done();
    },
  });
  await pipeline(src, new WorkerDecompressStream(), sink);
  return { out: Buffer.concat(chunks), maxChunk };
}

/**
 * Decompresses `z` into a reader that takes each chunk `ms` late (1 MiB high-water mark); `ahead`: the most bytes the
 * stream had pushed that the reader had not taken yet. A chunk `check` refuses fails the pipeline.
 */
async function slowly(z: Buffer, ms: number, check: (b: Buffer) => boolean = () => true): Promise<{ consumed: number; ahead: number }> {
  const d = new WorkerDecompressStream();
  let pushed = 0;
  let consumed = 0;
  let ahead = 0;
  const push = d.push.bind(d);
  d.push = (b: Buffer | null) => {
    pushed += b?.length ?? 0;
    ahead = Math.max(ahead, pushed - consumed);
    return push(b);
  };
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(b: Buffer, _e, done) {
      consumed += b.length;
      if (!check(b)) done(new Error('unexpected bytes'));
      else setTimeout(done, ms);
    },
  });
  await pipeline(Readable.from([z]), d, sink);
  return { consumed, ahead };
}

describe('WorkerDecompressStream (zstd on a worker thread)', () => {
  it('decompresses what zstd compressed, in any input chunking, across several frames, in chunks of at most 1 MiB', async () => {
    const a = sample(9_000_000, 1);
    const b = sample(3_000_000, 2);
    const frames = Buffer.concat([compress(a, { compressionLevel: 3 }), compress(b, { compressionLevel: 1 })]);
    const { out, maxChunk } = await collect(chunked(frames));
    expect(out.length).toBe(a.length + b.length);
    expect(createHash('sha256').update(out).digest('hex')).toBe(createHash('sha256').update(Buffer.concat([a, b])).digest('hex'));
    expect(maxChunk).toBeLessThanOrEqual(1 << 20);
  });

  it('output chunks given back once written (recycle) are decompressed into again, and the file is byte for byte the input', async () => {
    const input = sample(24 << 20, 11);
    const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-zstd-recycle-'));
    try {
      const file = path.join(dir, 'out');
      const z = new WorkerDecompressStream();
      const sink = new SyncFileSink(file, { flags: 'wx', mode: 0o600 });
      let given = 0;
      sink.afterWrite = (chunk) => {
        given++;
        z.recycle(chunk);
      };
      await pipeline(chunked(compress(input)), z, sink);
      expect(given).toBeGreaterThanOrEqual(24);
      // The worker decompressed into buffers it had been given back, not only into new ones.
      expect(z.reusedBuffers).toBeGreaterThan(0);
      expect(createHash('sha256').update(await readFile(file)).digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('recycle() ignores a buffer it did not push (it stays whole here)', async () => {
    const z = new WorkerDecompressStream();
    const foreign = Buffer.allocUnsafeSlow(1 << 20).fill(7);
    for (let i = 0; i < 8; i++) z.recycle(foreign);
    expect(foreign.length).toBe(1 << 20);
    expect(foreign[0]).toBe(7);
    const out: Buffer[] = [];
    await pipeline(Readable.from([compress(Buffer.from('small'))]), z, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
    expect(Buffer.concat(out).toString()).toBe('small');
    expect(z.reusedBuffers).toBe(0);
  });

  it('holds input back while the consumer is slow (bounded memory)', async () => {
    const plain = sample(48_000_000, 3);
    const z = compress(plain, { compressionLevel: 3 });
    const { consumed, ahead } = await slowly(z, 5);
    expect(consumed).toBe(plain.length);
    // Less than the 48 MB: three inputs in flight, each answered with at most 8 MiB at a time, and the two
    // high-water marks (1 MiB each). (About 11 MB in practice: these inputs decompress to about 3 MiB each.)
    expect(ahead).toBeLessThan(3 * 8 * (1 << 20) + 2 * (1 << 20));
  });

  it('an input that decompresses to far more than one reply is answered in parts, as the consumer takes them (zeros: 200 MB from 10 KB)', async () => {
    const zeros = Buffer.alloc(1 << 20);
    const c = new ZstdCompressStream({ level: 3, nbWorkers: 0 });
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    const ended = new Promise<void>((resolve) => c.on('end', () => resolve()));
    for (let i = 0; i < 200; i++) c.write(zeros);
    c.end();
    await ended; // every compressed byte read ('finish' comes before the last ones)
    const z = Buffer.concat(parts);
    expect(z.length).toBeLessThan(1 << 20); // one input message to the worker
    const { consumed, ahead } = await slowly(z, 2, (b) => b.every((x) => x === 0));
    expect(consumed).toBe(200 * (1 << 20));
    // A reply (8 MiB) waiting to be read and the next one, and the sink's high-water mark: not the 200 MB.
    expect(ahead).toBeLessThan(18 * (1 << 20));
  });

  it('fails on bytes that are not zstd, and on a stream cut inside a frame', async () => {
    const notZstd = await collect(Readable.from([Buffer.from('this is not a zstd frame at all')])).catch((e: Error) => e);
    expect(notZstd).toBeInstanceOf(Error);
    expect((notZstd as Error).message).toMatch(/frame descriptor|unknown|magic|prefix/i);
    const z = compress(sample(2_000_000, 4));
    const cut = await collect(Readable.from([z.subarray(0, z.length - 100)])).catch((e: Error) => e);
    expect(cut).toBeInstanceOf(Error);
    expect((cut as Error).message).toBe('Stream ended in middle of compressed data frame');
  });

  it('a stream destroyed midway ends its worker (the test process does not hang)', async () => {
    const z = compress(sample(8_000_000, 5));
    const d = new WorkerDecompressStream();
    const done = new Promise<void>((resolve) => d.on('close', () => resolve()));
    d.write(z.subarray(0, 1_000_000));
    d.destroy();
    await done;
    expect(d.destroyed).toBe(true);
  });
  it('a worker that dies mid-stream fails the stream (no hang)', async () => {
    const z = compress(sample(8_000_000, 8));
    const d = new WorkerDecompressStream();
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const run = pipeline(Readable.from([z.subarray(0, 1_000_000), z.subarray(1_000_000)]), d, sink);
    void (d as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await expect(run).rejects.toThrow(/zstd worker exited/);
    // Dying once the end was asked for, before it answered:
    const e = new WorkerDecompressStream();
    const inner = e as unknown as { worker: { terminate(): Promise<number> }; flushed: unknown };
    e._flush = (done) => {
      inner.flushed = done;
      void inner.worker.terminate();
    };
    const hung = new Promise((_r, reject) => setTimeout(() => reject(new Error('hung')), 20_000).unref());
    await expect(Promise.race([pipeline(Readable.from([z.subarray(0, 100_000)]), e, new Writable({ write: (_c, _e2, done) => done() })), hung])).rejects.toThrow(/zstd worker exited/);
  });

  it('a stream left idle (never ended, never destroyed) does not keep the process alive; one at work does', async () => {
    const mod = fileURLToPath(new URL('../../src/core/zstd-worker.ts', import.meta.url));
    // The second stream's pipeline waits on nothing but the worker: the process must stay until it is done.
    const script =
      `import { WorkerDecompressStream } from ${JSON.stringify(mod)}; import { compress } from 'zstd-napi'; import { pipeline } from 'node:stream/promises'; ` +
      `import { Readable, Writable } from 'node:stream'; new WorkerDecompressStream(); console.log('made'); let n = 0; ` +
      `const z = compress(Buffer.alloc(30_000_000, 7)); ` +
      `pipeline(Readable.from([z]), new WorkerDecompressStream(), new Writable({ write(c, _e, done) { n += c.length; done(); } })).then(() => console.log(n));`;
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout) => {
        if (err && err.killed) reject(new Error('the process did not exit: the idle worker kept it alive'));
        else resolve({ code: child.exitCode, stdout });
      });
    });
    expect(out.stdout.trim().split('\n')).toEqual(['made', '30000000']);
    expect(out.code).toBe(0);
  });
});

describe('staging a large artifact (zstd on the worker thread)', () => {
  let dir: string;
  let store: LocalStore;
  let keys: DecryptionKeys;
  const plain = sample(16_000_000, 6);
  let manifest: Manifest;
  let key: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tykdr-zstd-worker-'));
    const a = await storedArtifact({ dir: path.join(dir, 'store'), id: '20260101T000000Z-bbbbbb', component: 'redis', name: 'redis.rdb.zst.age', format: 'rdb', plaintext: plain, level: 1 });
    ({ store, keys, manifest, key } = a);
    expect(a.storedBytes).toBeGreaterThan(4 << 20); // over the worker threshold
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stages the plaintext byte for byte, the worker decompressing into buffers the file sink gave back', async () => {
    const recycle = vi.spyOn(WorkerDecompressStream.prototype, 'recycle');
    try {
      const staged = await stageArtifact({ store, manifest, component: 'redis', dir: path.join(dir, 'ok'), keys });
      expect(staged.plaintextBytes).toBe(plain.length);
      expect((await readFile(staged.file)).equals(plain)).toBe(true);
      // Every 1 MiB chunk written was given back (the last, partial one is given back too, and ignored).
      expect(recycle.mock.calls.length).toBeGreaterThanOrEqual(Math.floor(plain.length / (1 << 20)));
    } finally {
      recycle.mockRestore();
    }
  });

  it('an altered object fails its SHA-256 check and leaves no staged file', async () => {
    const file = path.join(dir, 'store', ...key.split('/'));
    const bytes = await readFile(file);
    bytes[bytes.length >> 1]! ^= 0x40;
    await writeFile(file, bytes);
    const staging = path.join(dir, 'bad');
    const err = await stageArtifact({ store, manifest, component: 'redis', dir: staging, keys }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('integrityError');
    expect((err as Error).message).toMatch(/sha256 check failed/);
    expect(await readdir(staging)).toEqual([]);
  });
});
