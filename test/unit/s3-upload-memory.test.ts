import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { uploadObject } from '../../src/backends/stores/s3-upload.js';

// A full garbage collection on demand (what `node --expose-gc` gives), to ask whether a chunk is still held.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The subset of S3Client that uploadObject calls: every command succeeds at once. */
function standInClient(): { client: S3Client; commands: string[] } {
  const commands: string[] = [];
  const client = {
    send: async (cmd: object) => {
      commands.push(cmd.constructor.name);
      return { UploadId: 'upload-1', ETag: '"etag"' };
    },
  } as unknown as S3Client;
  return { client, commands };
}

describe('uploadObject memory', () => {
  it('does not hold on to chunks it has copied into a part: memory stays bounded by the parts, not the object', async () => {
    const { client, commands } = standInClient();
    const early: WeakRef<Buffer>[] = [];
    let heldWhenChecked: number | undefined;
    const CHUNKS = 400; // 400 x 64 KiB = 26 MB through 5 MiB parts
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < CHUNKS; i++) {
          if (i === 300) {
            // The first 50 chunks went into parts long ago (parts 1-2 of 5 MiB each); nothing should keep them.
            // (A later task: a WeakRef keeps its target alive until the task that made it has ended.)
            await new Promise((r) => setImmediate(r));
            gc();
            heldWhenChecked = early.filter((w) => w.deref() !== undefined).length;
          }
          const chunk = Buffer.alloc(65536, i & 0xff);
          if (i < 50) early.push(new WeakRef(chunk));
          yield chunk;
        }
      })(),
      { objectMode: true },
    );
    await uploadObject({
      client,
      params: { Bucket: 'b', Key: 'k' },
      body,
      partSize: 5 * 1024 * 1024,
      concurrency: 2,
      signal: new AbortController().signal,
      abandon: async () => true,
    });
    expect(commands.filter((c) => c === 'UploadPartCommand')).toHaveLength(Math.ceil((CHUNKS * 65536) / (5 * 1024 * 1024)));
    expect(commands.at(-1)).toBe('CompleteMultipartUploadCommand');
    expect(heldWhenChecked).toBe(0);
  });
});
