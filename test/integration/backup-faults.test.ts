import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startMinio, type Minio } from '../helpers/minio.js';
import { freePort } from '../helpers/net.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, seedTykRedis } from '../helpers/tyk-fixture.js';
import { waitFor } from '../helpers/wait.js';
import { fingerprintTree, makeWorkspace, writingObjectOf, type Workspace } from '../helpers/workspace.js';

const PASSWORD = 'fault-test-password-xyz';
let redis: RedisServer;
let minio: Minio;
let ws: Workspace;
let tree: { root: string };
let before: Record<string, string>;

const storeLine = 'store: { kind: local, path: ./store }';
const enc = () => `encryption: { recipients: [${ws.recipient}] }`;
const redisComp = (extra = '') => `  redis: { kind: redis, host: 127.0.0.1, port: ${redis.port}, password: "${PASSWORD}"${extra} }`;
const filesComp = (root = tree.root) => `  config: { kind: files, roots: [${root}], exclude: ["**/*.log"] }`;

async function cfg(name: string, body: string): Promise<string> {
  return ws.writeConfig(name, body);
}

/** Runs a failing backup and proves it changed nothing in the store. */
async function expectFailure(configFile: string, code: number, pattern: RegExp, env: NodeJS.ProcessEnv = {}) {
  const res = await runCli(['backup', '-c', configFile], { env });
  expect(res.code, `stdout: ${res.stdout}\nstderr: ${res.stderr}`).toBe(code);
  expect(res.stderr).toMatch(pattern);
  expect(res.stderr).toMatch(/^Fix: /m);
  expect(res.stderr).not.toMatch(/\n\s+at /); // no stack without --debug
  expect(res.stderr + res.stdout).not.toContain(PASSWORD);
  expect(await fingerprintTree(ws.storeDir)).toEqual(before);
  return res;
}

beforeAll(async () => {
  [redis, minio, ws, tree] = await Promise.all([startRedis({ password: PASSWORD }), startMinio(), makeWorkspace(), makeConfigTree()]);
  await seedTykRedis(redis.port, { password: PASSWORD });
  const good = await cfg('good.yaml', `${storeLine}\n${enc()}\ncomponents:\n${redisComp()}\n${filesComp()}\n`);
  const res = await runCli(['backup', '-c', good]);
  expect(res.code, res.stderr).toBe(0);
  before = await fingerprintTree(ws.storeDir);
  expect(Object.keys(before).filter((k) => k.endsWith('manifest.json'))).toHaveLength(1);
});

afterAll(async () => {
  await Promise.all([redis?.stop(), minio?.stop(), ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

describe('bad input and unreachable sources fail cleanly, leaving the store untouched', () => {
  it('Redis unreachable: exit 3, names host:port', async () => {
    const port = await freePort();
    const f = await cfg('unreach.yaml', `${storeLine}\n${enc()}\ncomponents:\n  redis: { kind: redis, port: ${port} }\n`);
    await expectFailure(f, 3, new RegExp(`components\\.redis: Redis at 127\\.0\\.0\\.1:${port} is unreachable`));
  });

  it('wrong password: exit 3, names the user, never the password', async () => {
    const f = await cfg('wrongpw.yaml', `${storeLine}\n${enc()}\ncomponents:\n  redis: { kind: redis, port: ${redis.port}, password: "\${WRONG}" }\n`);
    const res = await expectFailure(f, 3, /refused the credentials of user "default"/, { WRONG: 'not-the-password-42' });
    expect(res.stderr).not.toContain('not-the-password-42');
  });

  it('bucket missing: exit 4, names the bucket', async () => {
    const f = await cfg(
      'nobucket.yaml',
      `store: { kind: s3, bucket: missing-bucket, endpoint: "${minio.endpoint}", forcePathStyle: true, accessKeyId: ${minio.accessKeyId}, secretAccessKey: "\${S3_SECRET}" }\n${enc()}\ncomponents:\n${redisComp()}\n`,
    );
    const res = await expectFailure(f, 4, /bucket "missing-bucket" does not exist/, { S3_SECRET: minio.secretAccessKey });
    expect(res.stderr).not.toContain(minio.secretAccessKey);
  });

  it('no recipient configured: exit 2, says how to make one', async () => {
    const f = await cfg('norecip.yaml', `${storeLine}\nencryption: {}\ncomponents:\n${redisComp()}\n`);
    const res = await expectFailure(f, 2, /no encryption recipient configured/);
    expect(res.stderr).toContain('tykdr key generate');
  });

  it('a recipient that is not an age key: exit 2, names it', async () => {
    const f = await cfg('badrecip.yaml', `${storeLine}\nencryption: { recipients: [age1notakey] }\ncomponents:\n${redisComp()}\n`);
    await expectFailure(f, 2, /encryption\.recipients\[0\] "age1notakey" is not an age X25519 recipient/);
  });

  it('unreadable (missing) config root: exit 3, names the path', async () => {
    const f = await cfg('noroot.yaml', `${storeLine}\n${enc()}\ncomponents:\n${filesComp('/nonexistent/tyk')}\n`);
    await expectFailure(f, 3, /components\.config\.roots: \/nonexistent\/tyk does not exist/);
  });

  it('symlink pointing outside the roots: exit 2, names link and target', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'tykdr-link-'));
    await mkdir(path.join(root, 'certs'));
    await symlink('/etc/passwd', path.join(root, 'certs', 'evil.pem'));
    await writeFile(path.join(root, 'tyk.conf'), '{}');
    const f = await cfg('symlink.yaml', `${storeLine}\n${enc()}\ncomponents:\n${filesComp(root)}\n`);
    await expectFailure(f, 2, /symlink .*certs\/evil\.pem points to \/etc\/passwd, outside the configured roots/);
    await rm(root, { recursive: true });
  });

  it('invalid config: exit 2, names file, path and line', async () => {
    const f = await cfg('invalid.yaml', `${storeLine}\n${enc()}\ncomponents:\n  redis: { kind: redis, port: 99999 }\n`);
    await expectFailure(f, 2, /invalid\.yaml, line 4: components\.redis\.port 99999/);
  });

  it('missing config file: exit 2, suggests tykdr init', async () => {
    await expectFailure(path.join(ws.dir, 'nope.yaml'), 2, /cannot read config file .*nope\.yaml \(ENOENT\)[\s\S]*tykdr init/);
  });

  it('unknown --component: exit 2, lists the configured ones', async () => {
    const f = path.join(ws.dir, 'good.yaml');
    const res = await runCli(['backup', '-c', f, '--component', 'mongo']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--component "mongo" is not configured');
    expect(res.stderr).toContain('use one of: redis, config');
  });

  it('--json errors are machine-readable', async () => {
    const f = await cfg('norecip2.yaml', `${storeLine}\nencryption: {}\ncomponents:\n${redisComp()}\n`);
    const res = await runCli(['backup', '-c', f, '--json']);
    expect(res.code).toBe(2);
    expect(JSON.parse(res.stdout)).toMatchObject({ error: { kind: 'badInput', exit_code: 2 } });
  });
});

describe('interruptions and dumps that end early', () => {
  let slow: RedisServer;
  let slowCfg: string;

  beforeAll(async () => {
    slow = await startRedis();
    await seedTykRedis(slow.port, { sessions: 20_000 });
    // Redis's own test knob: the forked child sleeps this many microseconds per key while writing the RDB.
    await slow.cli('CONFIG', 'SET', 'rdb-key-save-delay', '500');
    slowCfg = await cfg('slow.yaml', `${storeLine}\n${enc()}\ncomponents:\n  redis: { kind: redis, port: ${slow.port} }\n`);
  });

  afterAll(async () => {
    await slow?.stop();
  });

  /** Once the Redis dump has started, waits until its object is being written to the store, then runs `act`. */
  function midDump(act: () => void) {
    let sentAt = 0;
    let waiting: Promise<void> | undefined;
    return {
      onStderr: (chunk: string) => {
        if (waiting || !chunk.includes('redis (redis): started')) return;
        waiting = waitFor(() => writingObjectOf(ws.storeDir, 'redis'), { timeoutMs: 10_000, intervalMs: 20, what: 'the Redis object being written to the store' }).then(() => {
          sentAt = Date.now();
          act();
        });
        waiting.catch(() => undefined); // awaited (and so reported) by done()
      },
      /** After the command ended: when the act happened (fails if it never did). */
      done: async () => {
        if (!waiting) throw new Error('the backup never said "redis (redis): started"');
        await waiting;
        return sentAt;
      },
    };
  }

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} mid-backup stops promptly: exit 130, no manifest, partial objects removed`, async () => {
      let kill!: (s: NodeJS.Signals) => void;
      const mid = midDump(() => kill(sig));
      const res = await runCli(['backup', '-c', slowCfg], {
        onStderr: (chunk, k) => {
          kill = k;
          mid.onStderr(chunk);
        },
      });
      const sentAt = await mid.done();
      expect(Date.now() - sentAt).toBeLessThan(10_000);
      expect(res.code, res.stderr).toBe(130);
      expect(res.stderr).toContain(`${sig} received`);
      expect(await fingerprintTree(ws.storeDir)).toEqual(before);
    });
  }

  it('a crash (SIGKILL) leaves no manifest: listed as INCOMPLETE, refused by snapshot show', async () => {
    const crashStore = path.join(ws.dir, 'crash-store');
    const f = await cfg(
      'crash.yaml',
      `store: { kind: local, path: ${crashStore} }\n${enc()}\ncomponents:\n  redis: { kind: redis, port: ${slow.port} }\n${filesComp()}\n`,
    );
    const res = await runCli(['backup', '-c', f], {
      onStderr: (chunk, kill) => {
        if (chunk.includes('config: done')) kill('SIGKILL');
      },
    });
    expect(res.signal).toBe('SIGKILL');
    const list = await runCli(['snapshots', '-c', f, '--json']);
    const [snap] = JSON.parse(list.stdout).snapshots;
    expect(snap).toMatchObject({ complete: false, components: ['config'], problem: 'no manifest: the backup did not finish' });
    const text = await runCli(['snapshots', '-c', f]);
    expect(text.stdout).toContain('INCOMPLETE');
    const show = await runCli(['snapshot', 'show', snap.id, '-c', f]);
    expect(show.code).toBe(2);
    expect(show.stderr).toContain(`snapshot ${snap.id} is incomplete (it has no manifest)`);
    const latest = await runCli(['snapshot', 'show', 'latest', '-c', f]);
    expect(latest.code).toBe(2);
    expect(latest.stderr).toContain('no complete snapshot');
  });

  it('Redis dying mid-dump never yields a complete snapshot', async () => {
    const victim = await startRedis();
    await seedTykRedis(victim.port, { sessions: 20_000 });
    await victim.cli('CONFIG', 'SET', 'rdb-key-save-delay', '500');
    const f = await cfg('victim.yaml', `${storeLine}\n${enc()}\ncomponents:\n  redis: { kind: redis, port: ${victim.port} }\n`);
    const mid = midDump(() => {
      const r = new Redis({ port: victim.port, lazyConnect: true });
      r.on('error', () => undefined);
      r.connect().then(() => r.call('SHUTDOWN', 'NOSAVE')).catch(() => undefined).finally(() => r.disconnect());
    });
    const res = await runCli(['backup', '-c', f], { onStderr: (chunk) => mid.onStderr(chunk) });
    await mid.done();
    await victim.stop();
    expect([3, 5]).toContain(res.code);
    expect(res.stderr).toMatch(/components\.redis: /);
    expect(await fingerprintTree(ws.storeDir)).toEqual(before);
  });
});
