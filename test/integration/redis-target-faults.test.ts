import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_MARKER_KEY } from '../../src/backends/redis/target/restore-marker.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { useCleanups } from '../helpers/cleanups.js';
import { eventually, processesUsing } from '../helpers/crash.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * A TCP fault proxy in front of the Redis restore target and in front of the Redis source: a target that
 * stops answering mid-copy fails the restore with exit 6 naming the target and the stall
 * (components.<name>.stallTimeout), a target that resets the copy's connections with exit 6 saying the
 * connection broke, a source that stops answering mid-RDB fails the backup with exit 3; SIGTERM and SIGINT
 * while the target hangs end the restore within TYKDR_GRACE (exit 130), remove the staged plaintext, leave
 * the target marked partial and a journal that `--resume` finishes. The guard is a generous bound, not a
 * speed claim.
 */
const { cleanups } = useCleanups();
const GUARD_MS = 60_000;
/** More than the handshake, INFO and the marker carry on one connection; less than the copy. */
const MID_COPY = 200_000;

let ws: Workspace;
let source: RedisServer;
let target: RedisServer;
let toTarget: FaultProxy;
let toSource: FaultProxy;
let staging: string;
let snapshotKeys: number;

function config(name: string, stall: string): Promise<string> {
  return ws.writeConfig(
    name,
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${toSource.port}
    stallTimeout: ${stall}
    restore:
      mode: live
      batchSize: 500
      classes: [must, should, quota, ephemeral, analytics, mdcb, other]
      target: { host: 127.0.0.1, port: ${toTarget.port} }
restore: { stagingDir: ${staging}, reportDir: ./reports }
`,
  );
}

async function timed(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const t0 = Date.now();
  const res = await runCli(args, { cwd: ws.dir, env });
  expect(Date.now() - t0, `${args.join(' ')} ran past the guard\n${res.stderr}`).toBeLessThan(GUARD_MS);
  return res;
}

async function targetState(): Promise<{ keys: number; marker: string | null }> {
  const r = new Redis({ port: target.port, lazyConnect: true });
  await r.connect();
  try {
    return { keys: await r.dbsize(), marker: await r.get(RESTORE_MARKER_KEY) };
  } finally {
    r.disconnect();
  }
}

const stagedFolders = async () => (await readdir(staging).catch(() => [] as string[])).filter((n) => n.startsWith('tykdr-restore-'));

beforeAll(async () => {
  [ws, source, target] = await Promise.all([makeWorkspace(), startRedis(), startRedis()]);
  cleanups.push(() => ws.cleanup(), () => source.stop(), () => target.stop());
  [toTarget, toSource] = await Promise.all([startFaultProxy({ port: target.port }), startFaultProxy({ port: source.port })]);
  cleanups.push(() => toTarget.close(), () => toSource.close());
  staging = path.join(ws.dir, 'staging');
  await seedTykRedis(source.port, { sessions: 20_000 });
  const b = await timed(['backup', '-c', await config('backup.yaml', '60s'), '--json']);
  expect(b.code, b.stdout + b.stderr).toBe(0);
  snapshotKeys = Number(await source.cli('DBSIZE'));
}, 120_000);

describe('a Redis restore target that stalls or resets', () => {
  it('stops answering mid-copy: exit 6 naming the target, the stall and stallTimeout; the target is marked partial', async () => {
    await target.cli('FLUSHALL');
    toTarget.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_COPY });
    const res = await timed(['restore', '--plan', 'redis', '--yes', '-c', await config('stall.yaml', '2s')]);
    toTarget.setMode({ kind: 'pass' });
    expect(res.code, res.stderr).toBe(6);
    expect(res.stdout + res.stderr).toMatch(
      new RegExp(`components\\.redis\\.restore\\.target: Redis at 127\\.0\\.0\\.1:${toTarget.port} stalled while trying to SET and RESTORE keys on database 0 of 127\\.0\\.0\\.1:${toTarget.port}: no reply for 2 s \\(components\\.redis\\.stallTimeout is 2s\\)`),
    );
    expect(toTarget.stats.stalls).toBeGreaterThan(0);
    const st = await targetState();
    expect(st.keys).toBeLessThan(snapshotKeys);
    expect(JSON.parse(st.marker!)).toMatchObject({ snapshot: expect.any(String), restore_id: expect.any(String) });
    const dry = await timed(['restore', '--plan', 'redis', '--dry-run', '-c', await config('stall.yaml', '2s')]);
    expect(dry.stdout).toContain('PARTIAL: restore');
    expect(await stagedFolders()).toEqual([]);
  });

  it('resets every connection mid-copy: exit 6 saying the connection to the target broke', async () => {
    toTarget.setMode({ kind: 'reset', afterBytes: MID_COPY });
    const res = await timed(['restore', '--plan', 'redis', '--yes', '-c', await config('reset.yaml', '5s')]);
    toTarget.setMode({ kind: 'pass' });
    expect(res.code, res.stderr).toBe(6);
    expect(res.stdout + res.stderr).toMatch(
      new RegExp(`Redis at 127\\.0\\.0\\.1:${toTarget.port}: the connection broke \\((ECONNRESET|EPIPE|closed by the other end)\\) while trying to SET and RESTORE keys on database 0 of 127\\.0\\.0\\.1:${toTarget.port}; keys written so far stay`),
    );
    expect(await stagedFolders()).toEqual([]);
    // The fix the message gives works: run it again.
    const again = await timed(['restore', '--plan', 'redis', '--yes', '-c', await config('reset.yaml', '5s')]);
    expect(again.code, again.stderr).toBe(0);
    expect(await targetState()).toEqual({ keys: snapshotKeys, marker: null });
  });
});

describe('a Redis restore target that stops answering during the checks', () => {
  it('every connection frozen once the keys are in: exit 6 naming the target and the stall, not a failed check', async () => {
    await target.cli('FLUSHALL');
    toTarget.setMode({ kind: 'pass' });
    const cfg = await config('freeze.yaml', '2s');
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'restore', '--plan', 'redis', '--yes', '-c', cfg], {
      cwd: ws.dir,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The marker key goes once every key is written, just before the checks: the proxy freezes every connection
    // on the first command sent after the marker's DEL, in the same data event (a test polling the target could
    // see short checks finish before its freeze went out).
    const marker = Buffer.from(RESTORE_MARKER_KEY);
    let delSent = false;
    const freezesBefore = toTarget.stats.freezes;
    toTarget.freezeWhen((chunk, fromClient) => {
      if (!fromClient) return false;
      if (delSent) return true;
      if (chunk.includes(marker) && /\bDEL\b/i.test(chunk.toString('latin1'))) delSent = true;
      return false;
    });
    try {
      const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), GUARD_MS))]);
      expect(toTarget.stats.freezes, `the proxy never saw the marker's DEL and a command after it\n${out}`).toBe(freezesBefore + 1);
      expect(code, `still running ${GUARD_MS} ms after the target stopped answering\n${out}`).toBe(6);
    } finally {
      toTarget.freezeWhen(undefined);
      child.kill('SIGKILL');
      toTarget.setMode({ kind: 'pass' });
    }
    // Which command meets the frozen target first depends on timing (a check's command, or WAIT for replicas):
    // the message names the target, the stall and the setting either way.
    expect(out, out).toMatch(new RegExp(`Redis at 127\\.0\\.0\\.1:${toTarget.port} (stopped answering|stalled)[^\\n]*2 ?s[^\\n]*components\\.redis\\.stallTimeout`));
  });
});

describe('a Redis source that stalls during a backup', () => {
  it('stops sending mid-RDB: exit 3 naming the source, the stall and stallTimeout; no complete snapshot', async () => {
    toSource.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_COPY });
    const res = await timed(['backup', '-c', await config('src-stall.yaml', '2s')]);
    toSource.setMode({ kind: 'pass' });
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toContain(`Redis at 127.0.0.1:${toSource.port} stalled: it sent nothing for 2 s during the RDB transfer (components.redis.stallTimeout)`);
    const list = await timed(['snapshots', '-c', await config('src-stall.yaml', '2s'), '--json']);
    expect(JSON.parse(list.stdout).snapshots.filter((s: { complete: boolean }) => s.complete)).toHaveLength(1); // only the one from beforeAll
  });
});

describe('signals while the restore target hangs', () => {
  it('SIGTERM in a step with on_error: continue: no later step starts (it is skipped, not started), exit 130, --resume finishes', async () => {
    await target.cli('FLUSHALL');
    const cfg = await config('sig-steps.yaml', '60s');
    const plan = path.join(ws.dir, 'redis-then-check.yaml');
    await writeFile(
      plan,
      `version: 1
name: redis-then-check
description: The Redis restore, then its check again as a step of its own.
steps:
  - id: redis
    component: redis
    action: restore
    verify: [redis-ping]
    timeout: 5m
    on_error: continue
  - id: recheck
    component: redis
    action: verify
    verify: [redis-ping]
    timeout: 5m
    on_error: stop
`,
    );
    toTarget.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_COPY });
    const stallsBefore = toTarget.stats.stalls;
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'restore', '--plan', plan, '--yes', '--json', '-c', cfg], {
      cwd: ws.dir,
      env: { ...process.env, NO_COLOR: '1', TYKDR_GRACE: '10' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await eventually('the copy to hang', async () => toTarget.stats.stalls > stallsBefore, 60_000);
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), GUARD_MS))]);
    toTarget.setMode({ kind: 'pass' });
    expect(code, `still running ${GUARD_MS} ms after SIGTERM\n${stderr}`).toBe(130);
    const steps = (JSON.parse(stdout) as { report: { steps: Array<{ id: string; status: string; reason?: string }> } }).report.steps;
    expect(steps.find((x) => x.id === 'redis')).toMatchObject({ status: 'failed', reason: 'interrupted by SIGTERM' });
    expect(steps.find((x) => x.id === 'recheck')).toMatchObject({ status: 'skipped', reason: 'not started: interrupted by SIGTERM' });
    const resumed = await timed(['restore', '--resume', '-c', cfg]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await targetState()).toEqual({ keys: snapshotKeys, marker: null });
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig}: exit 130 within TYKDR_GRACE, staged plaintext removed, target marked partial, --resume finishes it`, async () => {
      await target.cli('FLUSHALL');
      // stallTimeout 60s: only the signal can end this run.
      const cfg = await config(`sig-${sig}.yaml`, '60s');
      toTarget.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_COPY });
      const stallsBefore = toTarget.stats.stalls;
      const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'restore', '--plan', 'redis', '--yes', '-c', cfg], {
        cwd: ws.dir,
        env: { ...process.env, NO_COLOR: '1', TYKDR_GRACE: '3' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      cleanups.push(async () => void child.kill('SIGKILL'));
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.on('data', () => undefined);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await eventually('the copy to hang', async () => toTarget.stats.stalls > stallsBefore, 60_000);
      child.kill(sig);
      const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), GUARD_MS))]);
      toTarget.setMode({ kind: 'pass' });
      expect(code, `still running ${GUARD_MS} ms after ${sig}\n${stderr}`).toBe(130);
      expect(stderr).toContain(`${sig} received: stopping`);
      expect(stderr).not.toContain('exiting now; clean-up may be incomplete'); // the hung socket did not need the grace
      await eventually(`no process using ${staging}`, async () => (await processesUsing(staging)).length === 0);
      expect(await stagedFolders()).toEqual([]);
      const st = await targetState();
      expect(st.marker).not.toBeNull();
      const journals = (await readdir(path.join(staging, 'tykdr-journal'))).filter((j) => j.endsWith('.json'));
      expect(journals).toHaveLength(1);
      const resumed = await timed(['restore', '--resume', '-c', cfg]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(await targetState()).toEqual({ keys: snapshotKeys, marker: null });
    });
  }
});
