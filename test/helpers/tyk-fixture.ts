import { chmod, mkdir, mkdtemp, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { RedisServer } from './redis-server.js';
import { fingerprintTree } from './workspace.js';

export const GATEWAY_SECRET = 'fixture-gateway-secret-do-not-leak';

/** One key of every class in shared/TYK-NOTES.md, with TTLs where Tyk sets them. */
export async function seedTykRedis(port: number, opts: { password?: string; db?: number; sessions?: number } = {}) {
  const r = new Redis({ port, host: '127.0.0.1', password: opts.password, db: opts.db ?? 0, lazyConnect: true });
  await r.connect();
  const now = Math.floor(Date.now() / 1000);
  const session = (i: number) =>
    JSON.stringify({
      org_id: 'org1',
      access_rights: { api1: { api_id: 'api1', versions: ['Default'] } },
      expires: now + 86400,
      last_updated: String(now),
      date_created: new Date().toISOString(),
      alias: `user-${i}`,
    });
  const p = r.pipeline();
  for (let i = 0; i < (opts.sessions ?? 50); i++) p.set(`apikey-${i.toString(16).padStart(32, '0')}`, session(i), 'EX', 86400 + i);
  p.set('apikey-canary0000000000000000000000000', session(-1));
  p.set('orgkey.org1', JSON.stringify({ org_id: 'org1', quota_max: 1000 }));
  p.set('oauth-data.api1.oauth-clientid.client1', JSON.stringify({ id: 'client1', secret: 'x' }));
  p.sadd('oauth-data.api1.oauth-clientset.org1', 'client1');
  p.rpush('oauth-data.api1.oauth-client-index.org1', 'client1');
  p.set('oauth-data.api1.oauth-access.token1', '{"client_id":"client1"}', 'EX', 3600);
  p.set('oauth-data.api1.oauth-refresh.refresh1', '{"client_id":"client1"}', 'EX', 7200);
  p.zadd('oauth-data.api1.oauth-client-tokens.client1', now + 3600, 'token1');
  p.set('oauth-data.api1.oauth-authorize.code1', '{}', 'EX', 1800);
  p.set('cert-raw-org1abc', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----');
  p.rpush('cert-org1-index', 'org1abc');
  p.set('tyk-admin-api-abcdef', JSON.stringify({ user: 'admin' }));
  p.set('coprocess-data:plugin1', 'state');
  p.set('quota-abc', '17', 'EX', 3600);
  p.set('rate-limit-abc', '3', 'EX', 600);
  p.set('cache-api1-abc', 'cached', 'EX', 900);
  p.set('host-checker:host1', 'up');
  p.rpush('analytics-tyk-system-analytics', 'rec1', 'rec2');
  p.set('rpc:node-definition-backup:abc', 'defs');
  p.set('some-other-app-key', 'not tyk');
  await p.exec();
  const size = await r.dbsize();
  r.disconnect();
  return { keys: size };
}

/** A gateway config tree: tyk.conf with a secret, apps, policies, certs, a relative symlink, varied modes. */
export async function makeConfigTree(): Promise<{ root: string; files: string[] }> {
  const root = await mkdtemp(path.join(tmpdir(), 'tykdr-gw-'));
  const conf = {
    listen_port: 8080,
    secret: GATEWAY_SECRET,
    hash_keys: true,
    hash_key_function: 'murmur128',
    storage: { type: 'redis', host: '127.0.0.1', port: 6379 },
    app_path: 'apps/',
  };
  await writeFile(path.join(root, 'tyk.conf'), JSON.stringify(conf, null, 2));
  await mkdir(path.join(root, 'apps'));
  await writeFile(path.join(root, 'apps', 'api1.json'), JSON.stringify({ api_id: 'api1', name: 'Orders' }));
  await mkdir(path.join(root, 'policies'));
  await writeFile(path.join(root, 'policies', 'policies.json'), '{"pol1":{"rate":100}}');
  await mkdir(path.join(root, 'certs'), { mode: 0o750 });
  await writeFile(path.join(root, 'certs', 'server.pem'), '-----BEGIN PRIVATE KEY-----\nfixture\n-----END PRIVATE KEY-----\n');
  await chmod(path.join(root, 'certs', 'server.pem'), 0o600);
  await symlink('server.pem', path.join(root, 'certs', 'current.pem'));
  await writeFile(path.join(root, 'gateway.log'), 'noise\n');
  const old = new Date('2024-02-03T04:05:06Z');
  await utimes(path.join(root, 'apps', 'api1.json'), old, old);
  return { root, files: ['tyk.conf', 'apps/api1.json', 'policies/policies.json', 'certs/server.pem', 'certs/current.pem'] };
}

/** What a drill must never change in production: the Redis's key count and digest, and the config folder's files. */
export async function productionState(prod: RedisServer, root: string): Promise<{ keys: string; digest: string; files: Awaited<ReturnType<typeof fingerprintTree>> }> {
  return { keys: (await prod.cli('DBSIZE')).trim(), digest: await prod.cli('DEBUG', 'DIGEST'), files: await fingerprintTree(root) };
}
