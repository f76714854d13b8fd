import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { encodeArgs } from '../../src/backends/redis/formats/command-feed.js';
import { replaySegments } from '../../src/backends/redis/pitr/replay.js';
import { RespPipe } from '../../src/backends/redis/protocol/resp-pipe.js';
import { useCleanups } from '../helpers/cleanups.js';
import { startRedis } from '../helpers/redis-server.js';

const { cleanups, tempDir } = useCleanups();

describe('replaySegments against a real server', () => {
  it('counts a command refused inside MULTI/EXEC (an error in the EXEC reply) as an error', async () => {
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const dir = await tempDir('tykdr-replay-');
    const client = new Redis({ port: server.port });
    cleanups.push(async () => client.disconnect());
    // The target diverged from the feed: "k" is a list where the feed expects a string.
    await client.rpush('k', 'x');
    const feed = Buffer.concat([
      encodeArgs(['SELECT', '0']),
      encodeArgs(['MULTI']),
      encodeArgs(['INCR', 'k']),
      encodeArgs(['SET', 'other', 'v']),
      encodeArgs(['EXEC']),
    ]);
    const file = path.join(dir, 'seg.resp');
    await writeFile(file, feed);
    const pipe = await RespPipe.open({ host: '127.0.0.1', port: server.port, db: 0, connectTimeoutMs: 5000 });
    let r;
    try {
      r = await replaySegments(pipe, [{ file, bytes: feed.length, marks: [[feed.length, Date.now()]] }]);
    } finally {
      pipe.close();
    }
    expect(await client.get('other')).toBe('v');
    expect(r.errors).toBe(1);
    expect(r.firstErrors.join(' ')).toMatch(/WRONGTYPE/);
  }, 30_000);
});
