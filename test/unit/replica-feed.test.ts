import { connect, type Socket } from 'node:net';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReplicaFeed } from '../../src/backends/redis/target/replica-feed.js';
import { tee } from '../../src/backends/redis/target/replication-load.js';

const PASSWORD = 'one-time-password';

/** Collects a stream to its end; rejects on its error, and after `ms` if it neither ended nor failed (a hang). */
function collect(r: Readable, ms = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const t = setTimeout(() => reject(new Error('hung: the stream neither ended nor failed')), ms);
    r.on('data', (c: Buffer) => parts.push(c));
    r.on('end', () => {
      clearTimeout(t);
      resolve(Buffer.concat(parts));
    });
    r.on('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

/** A replica's side of the handshake: AUTH, PSYNC; resolves once `want` bytes of the payload have arrived. */
async function replica(port: number, want: number): Promise<{ socket: Socket; payload: Promise<Buffer> }> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`*2\r\n$4\r\nAUTH\r\n$${PASSWORD.length}\r\n${PASSWORD}\r\n*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n`);
  const payload = new Promise<Buffer>((resolve) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const head = buf.indexOf(`$${want}\r\n`);
      if (head >= 0 && buf.length >= head + `$${want}\r\n`.length + want) resolve(buf.subarray(head + `$${want}\r\n`.length));
    });
  });
  return { socket, payload };
}

describe('ReplicaFeed and the evidence read beside it', () => {
  it('a link closed once the whole file went out (the replica loaded it and was promoted) lets the stream end: the reader beside it gets every byte', async () => {
    const data = Buffer.alloc(300_000, 7);
    const src = new PassThrough();
    const side = new PassThrough({ highWaterMark: 4 << 20 });
    const evidence = collect(side);
    // The stream has sent every byte but not yet ended when the replica closes the link (a small RDB, a fast target).
    const feed = await ReplicaFeed.listen({ open: () => pipeline(src, tee(side), () => undefined), size: data.length, host: '127.0.0.1', port: 0, password: PASSWORD });
    try {
      src.write(data);
      const r = await replica(feed.address.port, data.length);
      expect((await r.payload).equals(data)).toBe(true);
      r.socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(src.destroyed).toBe(false);
      src.end();
      expect((await evidence).equals(data)).toBe(true);
      expect(feed.failed).toBe(false);
    } finally {
      await feed.close();
    }
  });

  it('a link closed before the whole file went out stops the read; the reader beside it fails instead of waiting', async () => {
    const src = new PassThrough();
    const side = new PassThrough({ highWaterMark: 4 << 20 });
    const evidence = collect(side);
    evidence.catch(() => undefined);
    const feed = await ReplicaFeed.listen({ open: () => pipeline(src, tee(side), () => undefined), size: 1_000_000, host: '127.0.0.1', port: 0, password: PASSWORD });
    try {
      src.write(Buffer.alloc(1000, 1));
      const r = await replica(feed.address.port, 1_000_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      r.socket.destroy();
      await expect(evidence).rejects.toThrow(/stopped before its end|premature close/i);
      expect(src.destroyed).toBe(true);
      expect(feed.dropped).toMatch(/the target closed the replication link after 1000 of 1000000 bytes/);
    } finally {
      await feed.close();
    }
  });
});
