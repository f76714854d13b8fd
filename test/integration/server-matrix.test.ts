import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { buildPayload } from '../../src/backends/redis/formats/dump-payload.js';
import {
  acceptsDumpVersion, dumpPayloadVersion, maxDumpVersion, parseServerInfo, serverName,
} from '../../src/backends/redis/protocol/server-info.js';
import { useCleanups } from '../helpers/cleanups.js';
import { SERVER_BINARIES, SERVER_KINDS, type RedisServer, type ServerKind, startRedis, startSentinel } from '../helpers/redis-server.js';

/**
 * The server matrix itself: each server starts from the helper, says what it is in INFO, and its DUMP and
 * RESTORE agree with server-info.ts. The DUMP versions measured here are the ones recorded there.
 */

const { cleanups } = useCleanups();

async function server(kind: ServerKind): Promise<RedisServer> {
  const s = await startRedis({ server: kind });
  cleanups.push(() => s.stop());
  return s;
}

function connect(s: RedisServer): Redis {
  const c = new Redis({ host: s.host, port: s.port, maxRetriesPerRequest: 1 });
  cleanups.push(async () => c.disconnect());
  return c;
}

/** Every RDB version around the ones the matrix uses, and Valkey's own line (80 and up). */
const PROBED = [5, 8, 9, 10, 11, 12, 13, 20, 79, 80, 81];

describe.each(SERVER_KINDS)('%s', (kind) => {
  it('starts on a free port and says in INFO what it is', async () => {
    const s = await server(kind);
    const c = connect(s);
    const info = parseServerInfo(String(await c.info('server')));
    const want = SERVER_BINARIES[kind];
    expect(info.product).toBe(want.product);
    if (want.version !== null) expect(info.version).toBe(want.version);
    else expect(info.version).toMatch(/^7\.0\.\d+$/); // Debian bookworm's redis-server
    expect(serverName(info)).toBe(`${want.product} ${info.version}`);
    // Valkey presents itself to Redis clients as Redis 7.2.4.
    expect(info.redisCompatVersion).toBe(kind === 'valkey-8.1' ? '7.2.4' : info.version);
    // The cli of the same release talks to it (the helper's cli() uses it).
    expect(await s.cli('PING')).toBe('PONG');
    expect(s.bin.cli).toBe(want.cli);
  });

  it('DUMPs with the version maxDumpVersion gives, and RESTOREs exactly the versions acceptsDumpVersion allows', async () => {
    const s = await server(kind);
    const c = connect(s);
    const info = parseServerInfo(String(await c.info('server')));
    await c.set('probe', 'hello');
    const dump = (await c.dumpBuffer('probe'))!;
    expect(dumpPayloadVersion(dump)).toBe(maxDumpVersion(info));
    // The same value with another version in its trailer (and a CRC to match): taken or refused.
    const value = dump.subarray(1, dump.length - 10);
    const accepted: number[] = [];
    for (const v of PROBED) {
      const ok = await c.call('RESTORE', `probe:${v}`, '0', buildPayload(dump[0]!, value, v)).then(() => true, (err: Error) => {
        expect(err.message).toMatch(/payload version or checksum are wrong/);
        return false;
      });
      if (ok) {
        expect(await c.get(`probe:${v}`)).toBe('hello');
        accepted.push(v);
      }
    }
    expect(accepted).toEqual(PROBED.filter((v) => acceptsDumpVersion(info, v)));
    expect(accepted).toContain(maxDumpVersion(info));
  });
});

describe('Valkey rdb-version-check relaxed (measured, for the notes in server-info.ts)', () => {
  it('also takes Valkey\'s future versions (80+), never Redis 7.4+\'s 12 to 79', async () => {
    const s = await server('valkey-8.1');
    const c = connect(s);
    await c.config('SET', 'rdb-version-check', 'relaxed');
    const accepted: number[] = [];
    for (const v of PROBED) {
      if (await c.call('RESTORE', `r:${v}`, '0', buildPayload(0, Buffer.from([1, 0x78]), v)).then(() => true, () => false)) accepted.push(v);
    }
    expect(accepted).toEqual([5, 8, 9, 10, 11, 80, 81]);
  });
});

describe.each(SERVER_KINDS)('Sentinel of %s (<server> sentinel.conf --sentinel)', (kind) => {
  it('watches a master of the same server and names it by address', async () => {
    const master = await server(kind);
    const sentinel = await startSentinel({ masterName: 'tykmaster', master: { host: master.host, port: master.port } }, kind);
    cleanups.push(() => sentinel.stop());
    // Valkey calls the field server_mode; Redis, redis_mode.
    expect(await sentinel.cli('INFO', 'server')).toMatch(/(redis|server)_mode:sentinel/);
    expect((await sentinel.cli('SENTINEL', 'get-master-addr-by-name', 'tykmaster')).split('\n')).toEqual([master.host, String(master.port)]);
  });
});
