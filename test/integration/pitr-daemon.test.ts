import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * RPO in seconds (issue 13): while `tykdr stream` captures Redis, the daemon reads how far the stored chain
 * reaches; /hello measures the component's recovery point from it and /metrics shows the lag.
 */

let redis: RedisServer;
let ws: Workspace;
let config: string;
let healthPort: number;
const children: ChildProcess[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(args: string[]): { child: ChildProcess; err: () => string } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), ...args, '--config', config], { cwd: ws.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, err: () => err };
}

beforeAll(async () => {
  [redis, ws, healthPort] = await Promise.all([startRedis({ args: ['--repl-diskless-sync-delay', '0'] }), makeWorkspace(), freePort()]);
  config = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
tiers: { critical: { rto: 15m, rpo: 30s } }
health: { listen: 127.0.0.1:${healthPort} }
components:
  redis: { kind: redis, port: ${redis.port}, tier: critical }
`,
  );
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.stop();
  await ws?.cleanup();
});

describe('the daemon measures RPO from a point-in-time capture', () => {
  it('/hello says the stream covers the component and /metrics shows its lag in seconds', async () => {
    const stream = run(['stream', '--segment', '1s']);
    const end = Date.now() + 60_000;
    while (!/chain \S+ started/.test(stream.err())) {
      if (Date.now() > end) throw new Error(`stream did not start: ${stream.err()}`);
      await sleep(200);
    }
    for (let i = 0; i < 20; i++) {
      await redis.cli('SET', `k${i}`, 'v');
      await sleep(100);
    }
    // No backup job: only the stream can make the component healthy.
    const daemon = run(['daemon', '--no-leader', '--job', 'prune']);
    let hello: { status: string; details: Record<string, Array<{ status: string; output: string; observedValue?: number }>> } | undefined;
    let metrics = '';
    const until = Date.now() + 60_000;
    for (;;) {
      try {
        hello = (await (await fetch(`http://127.0.0.1:${healthPort}/hello`)).json()) as typeof hello;
        metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
        if (hello!.details.redis?.[0]?.output.includes('point-in-time stream')) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`no stream coverage in /hello: ${JSON.stringify(hello)}\n${daemon.err()}`);
      await sleep(500);
    }
    const check = hello!.details.redis![0]!;
    expect(check.status).toBe('pass');
    expect(check.output).toMatch(/point-in-time stream covers up to \S+ ago \(RPO 30s\)/);
    expect(check.observedValue).toBeLessThan(20);
    const lag = /^tykdr_stream_lag_seconds\{component="redis"\} ([\d.]+)$/m.exec(metrics);
    expect(lag, metrics).not.toBeNull();
    expect(Number(lag![1])).toBeLessThan(20);
    daemon.child.kill('SIGTERM');
    stream.child.kill('SIGTERM');
    await Promise.all([daemon.child, stream.child].map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on('close', r)))));
    expect(stream.child.exitCode, stream.err()).toBe(0);
  });

  it('drill --to-time proves the chain: the base restored into a scratch Redis, the feed replayed to the moment', async () => {
    const at = new Date().toISOString();
    const r = await runCli(['drill', '--config', config, '--plan', 'redis', '--to-time', at, '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const report = (JSON.parse(r.stdout) as { report: { kind: string; status: string; point_in_time: { asked: string }; steps: Array<{ id: string; status: string; details: { commands: number; target: string } }> } }).report;
    expect(report.kind).toBe('drill');
    expect(report.status).toBe('succeeded');
    expect(report.point_in_time.asked).toBe(at);
    const replay = report.steps.find((s) => s.id === 'redis-replay')!;
    expect(replay.status).toBe('ok');
    expect(replay.details.commands).toBeGreaterThanOrEqual(20);
    // Into the drill's scratch server, never the production one.
    expect(replay.details.target).not.toBe(`127.0.0.1:${redis.port}`);
  });
});
