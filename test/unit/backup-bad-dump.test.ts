import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/core/backup.js';
import { generateIdentity } from '../../src/core/age/index.js';
import { parseConfig } from '../../src/core/config/load.js';
import { TykdrError } from '../../src/core/errors.js';
import { fakeRedis } from '../helpers/fake-redis.js';
import { startRedis } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { backends } from '../../src/wiring.js';

const exec = promisify(execFile);

/** Answers like a Redis master, and replies to SYNC with whatever bytes the test gives it. */
function fakeMaster(reply: () => Buffer) {
  return fakeRedis((args, sock) => {
    const cmd = args[0]!.toUpperCase();
    if (cmd === 'INFO') {
      const info = '# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nrole:master\r\n';
      sock.write(`$${info.length}\r\n${info}\r\n`);
    } else if (cmd === 'PING') sock.write('+PONG\r\n');
    else if (cmd === 'SYNC') {
      const body = reply();
      sock.write(`$${body.length}\r\n`);
      sock.end(body);
    } else sock.write('+OK\r\n');
  });
}

let rdb: Buffer;
let dir: string;
let fake: Awaited<ReturnType<typeof fakeRedis>>;
let damage: (b: Buffer) => Buffer;

beforeAll(async () => {
  const redis = await startRedis();
  await seedTykRedis(redis.port, { sessions: 300 });
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-baddump-'));
  await exec('redis-cli', ['-p', String(redis.port), '--rdb', path.join(dir, 'real.rdb')]);
  rdb = await readFile(path.join(dir, 'real.rdb'));
  await redis.stop();
  fake = await fakeMaster(() => damage(rdb));
});

afterAll(async () => {
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function backupAgainstFake(): Promise<TykdrError> {
  const store = path.join(dir, 'store');
  const config = parseConfig(
    `store: { kind: local, path: ${store} }\nencryption: { recipients: [${generateIdentity().recipient}] }\ncomponents:\n  redis: { kind: redis, port: ${fake.port} }\n`,
    path.join(dir, 'tykdr.yaml'),
  );
  const err = await runBackup({ config, backends }).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TykdrError);
  // Never a complete snapshot, and nothing left behind.
  const snaps = await readdir(path.join(store, 'snapshots')).catch(() => [] as string[]);
  for (const s of snaps) expect(await readdir(path.join(store, 'snapshots', s))).not.toContain('manifest.json');
  return err as TykdrError;
}

describe('a damaged dump never becomes a complete snapshot', () => {
  it('sanity: the undamaged dump from the stand-in backs up', async () => {
    damage = (b) => b;
    const store = path.join(dir, 'good-store');
    const config = parseConfig(
      `store: { kind: local, path: ${store} }\nencryption: { recipients: [${generateIdentity().recipient}] }\ncomponents:\n  redis: { kind: redis, port: ${fake.port} }\n`,
      path.join(dir, 'tykdr.yaml'),
    );
    const res = await runBackup({ config, backends });
    expect(res.manifest.components.redis!.source.total_keys).toBeGreaterThan(300);
  });

  it('a flipped byte fails the CRC64 check: integrity error, exit 5', async () => {
    damage = (b) => {
      const c = Buffer.from(b);
      c[Math.floor(c.length / 2)]! ^= 0x01;
      return c;
    };
    const err = await backupAgainstFake();
    expect(err.kind).toBe('integrityError');
    expect(err.exitCode).toBe(5);
    expect(err.message).toMatch(/^components\.redis: /);
    expect(err.message).toMatch(/checksum|corrupt|invalid/i);
  });

  it('a dump cut short (declared length not reached) fails: integrity error', async () => {
    // The stand-in declares the shortened length, so the transfer "completes": only the RDB check can tell.
    damage = (b) => b.subarray(0, b.length - 100);
    const err = await backupAgainstFake();
    expect(err.message).toMatch(/^components\.redis: /);
    expect(['integrityError', 'sourceUnreachable']).toContain(err.kind);
  });
});
