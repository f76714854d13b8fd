import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Issue 14: the drill's scratch Redis is the restore's target, so it must take the snapshot's RDB version. A
 * Valkey 8.1 snapshot cannot be restored into Debian's Redis 7.0 (drill.redisServer's default): the drill
 * picks a fitting server (Valkey 8.1 from the tool cache), says so in the report, and passes; an explicitly
 * configured server that does not fit is refused before anything starts.
 */
describe('a drill of a Valkey 8.1 snapshot', () => {
  let source: RedisServer;
  let ws: Workspace;

  const config = (drill: string) => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${source.port} }
restore: { reportDir: ./reports }
${drill}
`;

  beforeAll(async () => {
    [source, ws] = await Promise.all([startRedis({ server: 'valkey-8.1' }), makeWorkspace()]);
    const r = new Redis({ port: source.port });
    for (let i = 0; i < 50; i++) await r.set(`apikey-${i.toString(16).padStart(32, '0')}`, JSON.stringify({ org_id: 'o1', access_rights: { a1: {} } }), 'EX', 3600 + i);
    await r.hset('app:settings', { theme: 'dark' });
    await r.zadd('leaderboard', 1, 'a', 2, 'b');
    r.disconnect();
    const file = await ws.writeConfig('tykdr.yaml', config(''));
    const res = await runCli(['backup', '-c', file, '--json']);
    expect(res.code, res.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled([source?.stop(), ws?.cleanup()]);
  });

  it('with the default drill.redisServer, runs in a fitting server, names it in the report and passes', async () => {
    const file = await ws.writeConfig('tykdr.yaml', config(''));
    const res = await runCli(['drill', '--plan', 'redis', '-c', file, '--json']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const report = JSON.parse(res.stdout).report as { status: string; scratch_targets?: Record<string, string>; warnings: string[]; steps: Array<{ id: string; details: Record<string, { target_server?: string }> }> };
    expect(report.status).toBe('succeeded');
    expect(report.scratch_targets?.redis).toMatch(/^Valkey 8\.1\.8 \(/);
    expect(report.warnings.some((w) => w.includes('drill.redisServer "redis-server" cannot take this snapshot') && w.includes('Valkey 8.1.8'))).toBe(true);
    expect(report.steps.find((s) => s.id === 'redis')!.details.redis!.target_server).toMatch(/Valkey 8\.1\.8/);
  });

  it('with restore.load replication, the scratch server loads the snapshot as a replica of tykdr, and the drill passes', async () => {
    const file = await ws.writeConfig('tykdr-repl.yaml', config('').replace(`redis: { kind: redis, port: ${source.port} }`, `redis: { kind: redis, port: ${source.port}, restore: { load: replication } }`));
    const res = await runCli(['drill', '--plan', 'redis', '-c', file, '--json']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const report = JSON.parse(res.stdout).report as { status: string; steps: Array<{ id: string; checks: Array<{ status: string }>; details: Record<string, { load?: string; keys_restored?: number }> }> };
    expect(report.status).toBe('succeeded');
    const step = report.steps.find((s) => s.id === 'redis')!;
    expect(step.details.redis).toMatchObject({ load: 'replication', keys_restored: 52 });
    expect(step.checks.every((c) => c.status !== 'failed')).toBe(true);
  });

  it('an explicitly configured server that cannot take the snapshot is refused before the drill starts (exit 2)', async () => {
    const debian = execFileSync('sh', ['-c', 'command -v redis-server']).toString().trim();
    const file = await ws.writeConfig('tykdr.yaml', config(`drill: { redisServer: ${debian} }`));
    const res = await runCli(['drill', '--plan', 'redis', '-c', file]);
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.stderr).toContain(`drill.redisServer "${debian}" is Redis 7.0`);
  });
});
