import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAbortError, TykdrError } from '../../src/core/errors.js';
import { RdbInspector } from '../../src/backends/redis/formats/rdb-inspector.js';
import { openRdbStream } from '../../src/backends/redis/source/replication.js';
import { fakeRedis } from '../helpers/fake-redis.js';
import { freePort } from '../helpers/net.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';

/** Pipes the RDB through an inspector; returns the facts and the number of bytes. */
async function validate(stream: Readable) {
  const ins = new RdbInspector();
  let bytes = 0;
  await pipeline(stream, ins, new Writable({ write: (c: Buffer, _e, cb) => ((bytes += c.length), cb()) }));
  return { facts: ins.facts(), bytes };
}

async function populate(r: RedisServer, keys: number, valueBytes: number): Promise<void> {
  const lua = `for i=1,${keys} do redis.call('SET', 'apikey-'..i, string.rep(string.char(65 + i % 26), ${valueBytes})..i) end
    redis.call('EXPIRE', 'apikey-1', 3600) return 1`;
  await r.cli('EVAL', lua, '0');
}

async function connectedReplicas(r: RedisServer): Promise<number> {
  return Number(/connected_slaves:(\d+)/.exec(await r.cli('INFO', 'replication'))![1]);
}

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rejection(p: Promise<unknown>): Promise<TykdrError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TykdrError);
  return err as TykdrError;
}

describe('openRdbStream against a real redis-server', () => {
  const servers: RedisServer[] = [];
  let disk: RedisServer;
  let diskless: RedisServer;

  beforeAll(async () => {
    [disk, diskless] = await Promise.all([
      startRedis({ args: ['--repl-diskless-sync', 'no', '--rdbcompression', 'no'] }),
      startRedis({ args: ['--repl-diskless-sync', 'yes', '--rdbcompression', 'no'] }),
    ]);
    servers.push(disk, diskless);
    // No compression: the dump is ~24 MB, long enough to catch the transfer in flight.
    const lua = `for i=1,3000 do redis.call('SET', 'apikey-'..i, redis.sha1hex(i)..string.rep(redis.sha1hex('x'..i), 200)) end
      redis.call('EXPIRE', 'apikey-1', 3600) redis.call('SELECT', 2) redis.call('SET', 'other', 'db') return 1`;
    await Promise.all([disk.cli('EVAL', lua, '0'), diskless.cli('EVAL', lua, '0')]);
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('streams a disk transfer of exactly the announced length, which validates', async () => {
    const t0 = Date.now();
    const rdb = await openRdbStream({ host: disk.host, port: disk.port });
    expect(rdb.transfer).toBe('disk');
    expect(rdb.startedAt.getTime()).toBeGreaterThanOrEqual(t0);
    const { facts, bytes } = await validate(rdb.stream);
    expect(bytes).toBe(rdb.declaredLength);
    expect(bytes).toBeGreaterThan(20e6);
    expect(facts.checksum).toBe('ok');
    expect(facts.databases).toMatchObject({ '0': { keys: 3000, expires: 1 }, '2': { keys: 1, expires: 0 } });
    expect(facts.aux['rdb-only'] ?? 'absent').toBe('absent');
    await waitFor(async () => (await connectedReplicas(disk)) === 0);
  });

  it('streams a diskless transfer without its end-of-transfer mark', async () => {
    const rdb = await openRdbStream({ host: diskless.host, port: diskless.port });
    expect(rdb.transfer).toBe('diskless');
    expect(rdb.declaredLength).toBeNull();
    const { facts, bytes } = await validate(rdb.stream);
    expect(facts.checksum).toBe('ok');
    expect(facts.totalKeys).toBe(3001);
    expect(bytes).toBe(facts.bytes);
    await waitFor(async () => (await connectedReplicas(diskless)) === 0);
  });

  it('keeps the socket paused while the consumer is behind', async () => {
    const rdb = await openRdbStream({ host: disk.host, port: disk.port });
    // The point: leave the transfer unread for a while, so an unpaused socket would have buffered far more.
    await new Promise((r) => setTimeout(r, 400));
    // Nothing read yet: only the stream's buffer (256 KiB) plus one socket chunk may be held.
    expect(rdb.stream.readableLength).toBeLessThan(512 * 1024);
    const { facts } = await validate(rdb.stream);
    expect(facts.totalKeys).toBe(3001);
  });

  it('aborts mid-transfer: the stream fails with an AbortError and the connection closes', async () => {
    for (const server of [disk, diskless]) {
      const ac = new AbortController();
      const rdb = await openRdbStream({ host: server.host, port: server.port, signal: ac.signal });
      let got = 0;
      const consumer = new Writable({
        write: (c: Buffer, _e, cb) => {
          got += c.length;
          if (got > 1024 * 1024 && !ac.signal.aborted) ac.abort();
          setTimeout(cb, 1);
        },
      });
      const err = await pipeline(rdb.stream, new RdbInspector(), consumer).then(() => null, (e: unknown) => e);
      expect(isAbortError(err), String(err)).toBe(true);
      expect(rdb.stream.destroyed).toBe(true);
      await waitFor(async () => (await connectedReplicas(server)) === 0);
    }
  });

  it('closes the connection when the consumer destroys the stream', async () => {
    const rdb = await openRdbStream({ host: disk.host, port: disk.port });
    rdb.stream.once('data', () => rdb.stream.destroy());
    await new Promise((r) => rdb.stream.once('close', r));
    await waitFor(async () => (await connectedReplicas(disk)) === 0);
  });

  it('rejects an already aborted signal without connecting', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await openRdbStream({ host: disk.host, port: disk.port, signal: ac.signal }).catch((e: unknown) => e);
    expect(isAbortError(err)).toBe(true);
  });
});

describe('openRdbStream authentication', () => {
  let redis: RedisServer;
  const password = 'pw-Secret-9f8e7d';
  const userPassword = 'user-Secret-1a2b3c';

  beforeAll(async () => {
    redis = await startRedis({
      password,
      aclUsers: [`backup on >${userPassword} +sync +replconf +ping`, `reader on >${userPassword} ~* +get +ping`],
    });
    await populate(redis, 10, 10);
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('authenticates the default user with a password', async () => {
    const rdb = await openRdbStream({ host: redis.host, port: redis.port, password });
    expect((await validate(rdb.stream)).facts.totalKeys).toBe(10);
  });

  it('authenticates an ACL user that has only +sync +replconf', async () => {
    const rdb = await openRdbStream({ host: redis.host, port: redis.port, username: 'backup', password: userPassword });
    expect((await validate(rdb.stream)).facts.totalKeys).toBe(10);
  });

  it('names the user and never the password when the credentials are wrong', async () => {
    const wrong = 'not-the-Password-42';
    const err = await rejection(openRdbStream({ host: redis.host, port: redis.port, username: 'backup', password: wrong }));
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toContain(`Redis at ${redis.host}:${redis.port} rejected the credentials of user "backup"`);
    expect(err.message).toContain('WRONGPASS');
    expect(err.fix).toMatch(/redis\.password.*\+sync \+replconf/);
    for (const text of [err.message, err.fix ?? '']) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(userPassword);
    }
    const def = await rejection(openRdbStream({ host: redis.host, port: redis.port, password: wrong }));
    expect(def.message).toContain('user "default"');
    expect(def.message).not.toContain(wrong);
  });

  it('says a password is needed when none is given', async () => {
    const err = await rejection(openRdbStream({ host: redis.host, port: redis.port }));
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toMatch(/requires authentication: NOAUTH/);
    expect(err.fix).toMatch(/redis\.password/);
  });

  it('explains a user without +sync / +replconf', async () => {
    const err = await rejection(openRdbStream({ host: redis.host, port: redis.port, username: 'reader', password: userPassword }));
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toMatch(/refused REPLCONF for user "reader": NOPERM/);
    expect(err.fix).toMatch(/\+sync \+replconf.*redis\.mode: keys/);
  });
});

describe('openRdbStream failures to connect', () => {
  it('names host:port when nothing listens there', async () => {
    const port = await freePort();
    const err = await rejection(openRdbStream({ host: '127.0.0.1', port }));
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toBe(`cannot connect to Redis at 127.0.0.1:${port}: connection refused (nothing listens there)`);
    expect(err.fix).toMatch(/redis\.host and redis\.port/);
  });
});

describe('openRdbStream protocol edge cases (scripted server)', () => {
  const payload = randomBytes(100_000);

  const run = async (onSync: (s: net.Socket) => void, extra: Partial<Parameters<typeof openRdbStream>[0]> = {}) => {
    const fake = await fakeRedis((args, s) => {
      if (args[0] === 'SYNC') onSync(s);
      else if (args[1] === 'rdb-only') s.write('-ERR Unrecognized REPLCONF option: rdb-only\r\n');
      else s.write('+OK\r\n');
    });
    try {
      const rdb = await openRdbStream({ host: '127.0.0.1', port: fake.port, connectTimeoutMs: 1000, ...extra });
      const chunks: Buffer[] = [];
      await pipeline(rdb.stream, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
      return { rdb, data: Buffer.concat(chunks) };
    } finally {
      await fake.close();
    }
  };

  it('skips keepalive newlines, tolerates a server without rdb-only, and ignores what follows the payload', async () => {
    const { rdb, data } = await run((s) => {
      s.write('\n\n\n');
      setTimeout(() => s.write(Buffer.concat([Buffer.from(`\n$${payload.length}\r\n`), payload.subarray(0, 10)])), 20);
      setTimeout(() => s.write(Buffer.concat([payload.subarray(10), Buffer.from('*1\r\n$4\r\nPING\r\n')])), 40);
    });
    expect(rdb.transfer).toBe('disk');
    expect(rdb.declaredLength).toBe(payload.length);
    expect(data.equals(payload)).toBe(true);
  });

  it('strips a diskless end mark that arrives split across packets', async () => {
    const mark = Buffer.from('a'.repeat(20) + 'b'.repeat(20));
    // What a pre-6.2 master sends next: only once the replica acknowledged the RDB (REPLCONF ACK), so never in
    // the mark's packet; this side sends no ACK and ignores it.
    const after = Buffer.from('*1\r\n$4\r\nPING\r\n'.repeat(5));
    const splits: Buffer[][] = [
      [payload.subarray(0, 60_000), Buffer.concat([payload.subarray(60_000), mark.subarray(0, 15)]), mark.subarray(15, 22), mark.subarray(22)],
      [Buffer.concat([payload, mark.subarray(0, 10)]), mark.subarray(10), after],
      [payload.subarray(0, 99_990), Buffer.concat([payload.subarray(99_990), mark]), after],
      [payload.subarray(0, 99_999), Buffer.concat([payload.subarray(99_999), mark.subarray(0, 1)]), mark.subarray(1, 2), mark.subarray(2, 39), mark.subarray(39), after],
    ];
    for (const pieces of splits) {
      const { rdb, data } = await run((s) => {
        s.write(`$EOF:${mark.toString()}\r\n`);
        pieces.forEach((p, i) => setTimeout(() => s.write(p), 20 * (i + 1)));
      });
      expect(rdb.transfer).toBe('diskless');
      expect(data.equals(payload)).toBe(true);
    }
  });

  it('passes on the mark\'s bytes inside a diskless payload (not at the end of what arrived) as payload', async () => {
    const mark = Buffer.from('c'.repeat(40));
    const withMark = Buffer.concat([payload.subarray(0, 50_000), mark, payload.subarray(50_000)]);
    const { data } = await run((s) => {
      s.write(`$EOF:${mark.toString()}\r\n`);
      setTimeout(() => s.write(withMark.subarray(0, 50_010)), 20);
      setTimeout(() => s.write(Buffer.concat([withMark.subarray(50_010), mark])), 40);
    });
    expect(data.equals(withMark)).toBe(true);
  });

  it('fails (does not end) when the connection closes before the announced length', async () => {
    const err = await rejection(run((s) => s.end(Buffer.concat([Buffer.from('$1000\r\n'), payload.subarray(0, 500)]))));
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toMatch(/closed the connection after 500 of 1000 RDB bytes$/);
  });

  it('fails when a diskless transfer closes before its end mark', async () => {
    const err = await rejection(run((s) => s.end(Buffer.concat([Buffer.from(`$EOF:${'c'.repeat(40)}\r\n`), payload]))));
    expect(err.message).toMatch(/closed the connection after 100000 bytes, before the end-of-transfer mark$/);
  });

  it('explains a refused SYNC (managed Redis) and points at the key-level mode', async () => {
    const err = await rejection(run((s) => s.write("-ERR unknown command 'SYNC', with args beginning with: \r\n")));
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toMatch(/^Redis at 127\.0\.0\.1:\d+ refused SYNC: ERR unknown command 'SYNC'/);
    expect(err.fix).toContain('redis.mode: keys');
  });

  it('never repeats the password, even when the server quotes it back', async () => {
    const fake = await fakeRedis((args, s) => {
      if (args[0] === 'AUTH') s.write(`-ERR unknown command 'AUTH', with args beginning with: '${args[1]}' \r\n`);
    });
    try {
      const err = await rejection(openRdbStream({ host: '127.0.0.1', port: fake.port, password: 'Quoted-Secret-77' }));
      expect(err.kind).toBe('sourceUnreachable');
      expect(err.message).toContain("with args beginning with: '***'");
      expect(err.message).not.toContain('Quoted-Secret-77');
    } finally {
      await fake.close();
    }
  });

  it('times out a server that never answers', async () => {
    const fake = await fakeRedis(() => undefined);
    try {
      const err = await rejection(openRdbStream({ host: '127.0.0.1', port: fake.port, password: 'x', connectTimeoutMs: 300 }));
      expect(err.message).toMatch(/did not answer AUTH within 0\.3 s/);
    } finally {
      await fake.close();
    }
  });

  it('fails a server that is not Redis', async () => {
    const fake = await fakeRedis((_a, s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    try {
      const err = await rejection(openRdbStream({ host: '127.0.0.1', port: fake.port, connectTimeoutMs: 1000 }));
      expect(err.message).toMatch(/answered REPLCONF capa eof with "HTTP\/1.1 400 Bad Request": it does not look like Redis$/);
    } finally {
      await fake.close();
    }
  });
});
