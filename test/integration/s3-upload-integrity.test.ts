import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ChecksumMode, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/backends/stores/s3-store.js';
import { partSizeOf, uploadObject } from '../../src/backends/stores/s3-upload.js';
import { minioStoreConfig, startMinio, type Minio } from '../helpers/minio.js';

/**
 * What the S3 store sends with object data, and what the store keeps: every PutObject and UploadPart
 * carries a CRC32 of exactly its body (the store checks it, and keeps it: HeadObject with ChecksumMode
 * ENABLED answers it back), the payload is signed (SHA-256 in x-amz-content-sha256) over plain http and
 * UNSIGNED-PAYLOAD over https, and an Object Lock upload over https is accepted with its retention.
 */

/** CRC-32/ISO-HDLC, byte at a time: the reference the stored checksums are compared with. */
const TABLE = new Uint32Array(256).map((_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  return c >>> 0;
});
function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = (c >>> 8) ^ TABLE[(c ^ data[i]!) & 0xff]!;
  return (c ^ 0xffffffff) >>> 0;
}
const b64 = (crc: number) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc);
  return out.toString('base64');
};

interface Sent {
  command: string;
  sha256: string | undefined;
  crc32: string | undefined;
  bodyCrc: string | undefined;
}

/**
 * An S3Store whose requests are recorded as they leave (after the SDK built and signed them): command, the
 * x-amz-content-sha256 and x-amz-checksum-crc32 headers, and the CRC32 of the body actually sent.
 */
function recordingStore(
  minio: Minio,
  bucket: string,
  over: Partial<ConstructorParameters<typeof S3Store>[0]> = {},
  opts: { corruptParts?: boolean } = {},
): { store: S3Store; sent: Sent[]; client: S3Client } {
  const client = new S3Client({
    endpoint: minio.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    ...(minio.ca ? { requestHandler: { httpsAgent: new https.Agent({ ca: readFileSync(minio.ca) }) } } : {}),
  });
  const store = new S3Store(minioStoreConfig(minio, bucket, 'p', { connectTimeout: '10s', stallTimeout: '60s', maxAttempts: 5, ...over }), {}, client);
  const sent: Sent[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { headers: Record<string, string>; body?: unknown };
      let body = req.body instanceof Uint8Array ? req.body : undefined;
      if (opts.corruptParts && body && context.commandName === 'UploadPartCommand') {
        // A bit flipped on the way, after the SDK computed the checksum and signed (a copy: the store keeps its part).
        body = Buffer.from(body);
        body[body.length >> 1]! ^= 1;
        req.body = body;
      }
      sent.push({
        command: context.commandName ?? '?',
        sha256: req.headers['x-amz-content-sha256'],
        crc32: req.headers['x-amz-checksum-crc32'],
        bodyCrc: body ? b64(crc32(body)) : undefined,
      });
      return next(args);
    },
    // After signing: what goes on the wire.
    { step: 'finalizeRequest', name: 'testRecorder', priority: 'low' },
  );
  return { store, sent, client };
}

/** `data` in chunks of uneven sizes, as a pipeline hands them over. */
function unevenBody(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = [65536, 16, 1, 100_000, 7, 300_001][i % 6]!;
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(chunks, { objectMode: true });
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** What the bucket answers for the object's checksum (ChecksumMode ENABLED). */
async function storedChecksum(minio: Minio, bucket: string, key: string): Promise<string | undefined> {
  const head = await minio.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `p/${key}`, ChecksumMode: ChecksumMode.ENABLED }));
  return head.ChecksumCRC32;
}

/** The checksum S3 keeps for a multipart object: the CRC32 of the parts' CRC32s (4 bytes each, big-endian), "-" the part count. */
function compositeCrc(parts: Buffer[]): string {
  return `${b64(crc32(Buffer.concat(parts.map((p) => Buffer.from(b64(crc32(p)), 'base64')))))}-${parts.length}`;
}

const PART = 5 * 1024 * 1024;

for (const tls of [false, true]) {
  describe(`S3 uploads over ${tls ? 'https' : 'plain http'}: checksums and payload signing`, () => {
    let minio: Minio;
    beforeAll(async () => {
      minio = await startMinio({ tls });
      await minio.createBucket('sums');
      await minio.createBucket('locked', { objectLock: true });
    }, 120_000);
    afterAll(async () => {
      await minio?.stop();
    });

    it('a multipart upload: each part carries the CRC32 of its bytes, the bucket keeps their composite, the data reads back', async () => {
      const { store, sent } = recordingStore(minio, 'sums');
      const data = randomBytes(2 * PART + 123_457);
      const put = await store.put('multi.bin', unevenBody(data));
      expect(put.bytes).toBe(data.length);

      const parts = sent.filter((s) => s.command === 'UploadPartCommand');
      expect(parts).toHaveLength(3);
      const expected = [data.subarray(0, PART), data.subarray(PART, 2 * PART), data.subarray(2 * PART)];
      parts.forEach((p, i) => {
        expect(p.crc32).toBe(b64(crc32(expected[i]!)));
        expect(p.bodyCrc).toBe(p.crc32);
        if (tls) expect(p.sha256).toBe('UNSIGNED-PAYLOAD');
        else expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      });
      // Requests without object data stay signed either way.
      for (const s of sent.filter((x) => x.command !== 'UploadPartCommand' && x.command !== 'PutObjectCommand')) {
        expect(s.sha256).not.toBe('UNSIGNED-PAYLOAD');
      }
      expect(await storedChecksum(minio, 'sums', 'multi.bin')).toBe(compositeCrc(expected));
      expect((await readAll(await store.get('multi.bin'))).equals(data)).toBe(true);
    });

    it('parts grow: the part size doubles every partsPerSize parts (here 2), each part checksummed, the data reads back', async () => {
      const { store, sent, client } = recordingStore(minio, 'sums');
      const data = randomBytes(2 * PART + 2 * 2 * PART + 3 * 1024 * 1024);
      await uploadObject({
        client, params: { Bucket: 'sums', Key: 'p/grow.bin' }, body: unevenBody(data), partSize: PART, partsPerSize: 2, concurrency: 2,
        signal: new AbortController().signal, abandon: async () => true,
      });
      const parts = sent.filter((x) => x.command === 'UploadPartCommand');
      const sizes = [PART, PART, 2 * PART, 2 * PART, 3 * 1024 * 1024];
      expect(parts).toHaveLength(sizes.length);
      const expected: Buffer[] = [];
      for (let i = 0, at = 0; i < sizes.length; at += sizes[i]!, i++) expected.push(data.subarray(at, at + sizes[i]!));
      parts.forEach((x, i) => expect(x.bodyCrc, `part ${i + 1}`).toBe(b64(crc32(expected[i]!))));
      expect(await storedChecksum(minio, 'sums', 'grow.bin')).toBe(compositeCrc(expected));
      expect((await readAll(await store.get('grow.bin'))).equals(data)).toBe(true);
    });

    it('a single PutObject: the CRC32 of the whole body, kept by the bucket as is', async () => {
      const { store, sent } = recordingStore(minio, 'sums');
      const data = randomBytes(777_777);
      await store.put('single.bin', unevenBody(data));
      const puts = sent.filter((s) => s.command === 'PutObjectCommand');
      expect(puts).toHaveLength(1);
      expect(puts[0]!.crc32).toBe(b64(crc32(data)));
      if (tls) expect(puts[0]!.sha256).toBe('UNSIGNED-PAYLOAD');
      else expect(puts[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(await storedChecksum(minio, 'sums', 'single.bin')).toBe(b64(crc32(data)));
      expect((await readAll(await store.get('single.bin'))).equals(data)).toBe(true);
    });

    it('a part whose bytes change after checksumming and signing is refused by the bucket, and the put fails', async () => {
      const { store, sent } = recordingStore(minio, 'sums', {}, { corruptParts: true });
      await expect(store.put('corrupt.bin', unevenBody(randomBytes(PART + 10)))).rejects.toThrow(
        // Over https only the CRC32 can catch it; over http the signed payload hash is checked first.
        tls ? /upload of corrupt\.bin .*XAmzContentChecksumMismatch/ : /upload of corrupt\.bin .*(XAmzContentSHA256Mismatch|XAmzContentChecksumMismatch)/,
      );
      expect(sent.some((s) => s.command === 'UploadPartCommand' && s.bodyCrc !== s.crc32)).toBe(true);
      expect(await store.stat('corrupt.bin')).toBeNull();
    });

    it('Object Lock: a multipart and a single upload are accepted with their retention and checksum', async () => {
      const { store } = recordingStore(minio, 'locked', { objectLock: { mode: 'GOVERNANCE', days: 1 } });
      const big = randomBytes(PART + 1);
      const small = randomBytes(1000);
      await store.put('big.bin', unevenBody(big));
      await store.put('small.bin', unevenBody(small));
      expect((await store.stat('big.bin'))?.lock?.mode).toBe('GOVERNANCE');
      expect((await store.stat('small.bin'))?.lock?.mode).toBe('GOVERNANCE');
      expect(await storedChecksum(minio, 'locked', 'big.bin')).toBe(compositeCrc([big.subarray(0, PART), big.subarray(PART)]));
      expect(await storedChecksum(minio, 'locked', 'small.bin')).toBe(b64(crc32(small)));
    });
  });
}

describe('CRC-32 reference of this test', () => {
  it('part sizes: 1,000 parts of the first size, then doubling, never above S3\'s 5 GiB; 10,000 parts hold 5.3 TB at 5 MiB', () => {
    expect([1, 1000, 1001, 2000, 2001].map((n) => partSizeOf(n, PART))).toEqual([PART, PART, 2 * PART, 2 * PART, 4 * PART]);
    expect(partSizeOf(10_000, 512 * 1024 * 1024)).toBe(5 * 1024 ** 3);
    let total = 0;
    for (let n = 1; n <= 10_000; n++) total += partSizeOf(n, PART);
    expect(total).toBe(5 * 1024 * 1024 * 1000 * 1023); // 5.36 TB (4.9 TiB), near S3's 5 TiB object limit
  });

  it('has the check value of CRC-32/ISO-HDLC', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
});
