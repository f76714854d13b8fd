import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseScratchBinary, describeBinary } from '../../src/backends/redis/target/scratch-binary.js';
import { TykdrError } from '../../src/core/errors.js';

/**
 * Which binary runs a restore's scratch server, over a folder of stand-in binaries that only answer
 * `--version` as the real ones do (Redis 6.2.14, Redis 7.4.0, Valkey 8.1.8). The configured one is a stand-in
 * too; the real servers run the scratch in test/integration/redis-matrix-files.test.ts.
 */

let dir: string;
const SETTING = 'components.redis.restore.redisServer';

async function standIn(name: string, banner: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\necho '${banner}'\n`);
  await chmod(file, 0o755);
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-scratch-bins-'));
  await standIn('redis-server-6.2.14', 'Redis server v=6.2.14 sha=40305114:0 malloc=libc bits=64 build=dff95a8e7a99d269');
  await standIn('redis-server-7.4.0', 'Redis server v=7.4.0 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1');
  await standIn('valkey-server', 'Valkey server v=8.1.8 sha=00000000:1 malloc=libc bits=64 build=7eb4ebc9d7e91f4e');
  await standIn('not-a-server', 'Redis server v=5.0.0');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const valkeyTarget = { maxRdb: 11, name: 'Valkey 8.1.8' };

describe('describeBinary', () => {
  it('reads product and release from --version, and the RDB version they write (Valkey 8.1: 11, not Redis 8.1)', async () => {
    expect(await describeBinary(path.join(dir, 'valkey-server'), SETTING)).toMatchObject({ product: 'Valkey', version: '8.1.8', rdbVersion: 11 });
    expect(await describeBinary(path.join(dir, 'redis-server-6.2.14'), SETTING)).toMatchObject({ product: 'Redis', version: '6.2.14', rdbVersion: 9 });
  });
});

describe('chooseScratchBinary', () => {
  it('keeps an explicitly configured binary that fits', async () => {
    const got = await chooseScratchBinary(path.join(dir, 'redis-server-7.4.0'), SETTING, { snapshotRdb: 10, writtenBy: 'Redis 7.0.15' }, undefined, [dir]);
    expect(got).toMatchObject({ picked: false, binary: { version: '7.4.0' } });
  });

  it('refuses an explicitly configured binary that does not fit, naming its release and what is needed', async () => {
    const err = await chooseScratchBinary(path.join(dir, 'redis-server-7.4.0'), SETTING, { snapshotRdb: 11, writtenBy: 'Valkey 8.1.8', target: valkeyTarget }, undefined, [dir]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('badInput');
    expect((err as TykdrError).message).toBe(
      `${SETTING} "${path.join(dir, 'redis-server-7.4.0')}" is Redis 7.4.0 (RDB version 12), but this restore needs a server that loads RDB version 11 (the snapshot, written by Valkey 8.1.8) and writes DUMP payloads the target, Valkey 8.1.8, RESTOREs (RDB version 11 or older)`,
    );
  });

  it('with the default name, picks the fitting binary closest to the snapshot: Valkey for a Valkey target (Redis 7.4 writes RDB 12), Redis 6.2 for a 6.2 target', async () => {
    // The default "redis-server" on this machine is Debian's 7.0 (RDB 10): it fits neither.
    const v = await chooseScratchBinary('redis-server', SETTING, { snapshotRdb: 11, writtenBy: 'Valkey 8.1.8', target: valkeyTarget }, undefined, [dir]);
    expect(v).toMatchObject({ picked: true, binary: { product: 'Valkey', path: path.join(dir, 'valkey-server') } });
    const r = await chooseScratchBinary('redis-server', SETTING, { snapshotRdb: 9, writtenBy: 'Redis 6.2.14', target: { maxRdb: 9, name: 'Redis 6.2.14' } }, undefined, [dir]);
    expect(r).toMatchObject({ picked: true, binary: { version: '6.2.14' } });
  });

  it('never gives a multi-part AOF to a server before Redis 7.0, and says what it found when nothing fits', async () => {
    const err = await chooseScratchBinary('redis-server', SETTING, { snapshotRdb: 0, writtenBy: 'Redis 7.0.15', multiPart: true, target: { maxRdb: 9, name: 'Redis 6.2.14' } }, undefined, [dir]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).message).toContain('needs one of Redis 7.0 or later (or Valkey) that loads the multi-part AOF folder');
    expect((err as TykdrError).message).toContain(`Redis 6.2.14 (${path.join(dir, 'redis-server-6.2.14')})`);
    expect((err as TykdrError).message).toContain('Valkey 8.1.8');
    expect((err as TykdrError).message).not.toContain('not-a-server');
  });
});
