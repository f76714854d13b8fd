import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeTlsFiles } from '../helpers/tls.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  ws = await makeWorkspace();
  cleanups.push(() => ws.cleanup());
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function backup(name: string, component: string, env: NodeJS.ProcessEnv = {}) {
  const f = await ws.writeConfig(name, `store: { kind: local, path: ./store }\nencryption: { recipients: [${ws.recipient}] }\ncomponents:\n  redis:\n${component}`);
  const res = await runCli(['backup', '-c', f, '--json'], { env });
  // With --json an error is a JSON document on stdout.
  return { ...res, error: res.code === 0 ? '' : String(JSON.parse(res.stdout).error?.message) };
}

async function until(check: () => Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Redis Sentinel', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let sentinelPort: number;

  beforeAll(async () => {
    master = await startRedis();
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', '0'] });
    cleanups.push(() => master.stop(), () => replica.stop());
    await replica.cli('REPLICAOF', '127.0.0.1', String(master.port));
    await seedTykRedis(master.port, { sessions: 100 });
    await until(async () => /master_link_status:up/.test(await replica.cli('INFO', 'replication')));
    await until(async () => (await replica.cli('DBSIZE')) === (await master.cli('DBSIZE')));
    const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-sentinel-'));
    sentinelPort = await freePort();
    const conf = path.join(dir, 'sentinel.conf');
    await writeFile(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor tykmaster 127.0.0.1 ${master.port} 1\nsentinel down-after-milliseconds tykmaster 5000\n`);
    const proc: ChildProcess = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
    cleanups.push(async () => {
      proc.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    });
    const s = new Redis({ port: sentinelPort, lazyConnect: true, retryStrategy: () => 200 });
    s.on('error', () => undefined);
    await until(async () => {
      if (s.status === 'wait') await s.connect();
      const reps = (await s.call('SENTINEL', 'REPLICAS', 'tykmaster')) as string[][];
      return reps.some((r) => r.join(' ').includes('master-link-status ok'));
    });
    s.disconnect();
  });

  const sentinelSection = (fromReplica: boolean) =>
    `    kind: redis\n    sentinel:\n      masterName: tykmaster\n      sentinels: [{ host: 127.0.0.1, port: 1 }, { host: 127.0.0.1, port: ${sentinelPort} }]\n      fromReplica: ${fromReplica}\n`;

  it('discovers the master by name (skipping a dead sentinel) and backs it up', async () => {
    const res = await backup('sentinel-master.yaml', sentinelSection(false));
    expect(res.code, res.stderr).toBe(0);
    const src = JSON.parse(res.stdout).manifest.components.redis.source;
    expect(src.address).toBe(`127.0.0.1:${master.port}`);
    expect(src.resolved_via).toBe('sentinel master tykmaster');
    expect(src.role).toBe('master');
    expect(src.total_keys).toBe(Number(await master.cli('DBSIZE')));
  });

  it('takes the snapshot from a healthy replica when asked', async () => {
    const res = await backup('sentinel-replica.yaml', sentinelSection(true));
    expect(res.code, res.stderr).toBe(0);
    const src = JSON.parse(res.stdout).manifest.components.redis.source;
    expect(src.address).toBe(`127.0.0.1:${replica.port}`);
    expect(src.resolved_via).toBe('sentinel replica of tykmaster');
    expect(src.role).toBe('slave');
    expect(src.total_keys).toBe(Number(await master.cli('DBSIZE')));
  });

  it('an unknown master name fails with exit 3 naming it', async () => {
    const res = await backup('sentinel-bad.yaml', sentinelSection(false).replace('masterName: tykmaster', 'masterName: nosuch'));
    expect(res.code).toBe(3);
    expect(res.error).toContain('no sentinel could name the master "nosuch"');
  });
});

describe('Redis with TLS and an ACL user', () => {
  let tlsRedis: RedisServer;
  let tls: Awaited<ReturnType<typeof makeTlsFiles>>;
  let tlsPort: number;

  beforeAll(async () => {
    tls = await makeTlsFiles();
    tlsPort = await freePort();
    tlsRedis = await startRedis({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no', '--tls-replication', 'yes'],
      aclUsers: ['tykdr on >acl-pass-123 +ping +info +sync +psync +replconf'],
    });
    cleanups.push(() => tlsRedis.stop(), () => rm(tls.dir, { recursive: true, force: true }));
    await seedTykRedis(tlsRedis.port, { sessions: 30 });
  });

  it('backs up over TLS as a least-privilege ACL user', async () => {
    const res = await backup(
      'tls.yaml',
      `    kind: redis\n    port: ${tlsPort}\n    username: tykdr\n    password: \${ACL_PW}\n    tls: { ca: ${tls.ca} }\n`,
      { ACL_PW: 'acl-pass-123' },
    );
    expect(res.code, res.stderr).toBe(0);
    const src = JSON.parse(res.stdout).manifest.components.redis.source;
    expect(src.total_keys).toBe(Number(await tlsRedis.cli('DBSIZE')));
    expect(res.stdout + res.stderr).not.toContain('acl-pass-123');
  });

  it('an untrusted server certificate fails with exit 3', async () => {
    const res = await backup('tls-untrusted.yaml', `    kind: redis\n    port: ${tlsPort}\n    username: tykdr\n    password: acl-pass-123\n    tls: { enabled: true }\n`);
    expect(res.code, res.stderr).toBe(3);
    expect(res.error).toMatch(/certificate/i);
    expect(res.stderr).toBe('');
  });

  it('an ACL user without +sync fails with exit 3 and says which permission', async () => {
    await tlsRedis.cli('ACL', 'SETUSER', 'weak', 'on', '>weak-pass', '+ping', '+info');
    const res = await backup('acl-weak.yaml', `    kind: redis\n    port: ${tlsRedis.port}\n    username: weak\n    password: weak-pass\n`);
    expect(res.code, res.stderr).toBe(3);
    expect(res.error).toMatch(/weak/);
    expect(res.error).toMatch(/sync|permission/i);
  });
});
