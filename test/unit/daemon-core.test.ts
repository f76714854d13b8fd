import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BackupResult } from '../../src/core/backup.js';
import { parseConfig, type Config } from '../../src/core/config/load.js';
import { TykdrError } from '../../src/core/errors.js';
import { MANIFEST_FORMAT, type Manifest } from '../../src/core/manifest.js';
import { Daemon } from '../../src/daemon/daemon.js';
import type { DrillOutcomes, Jobs } from '../../src/daemon/jobs.js';
import { jsonLogger } from '../../src/daemon/log.js';
import type { NotificationBody, Notifier } from '../../src/daemon/notify.js';
import type { Scheduler } from '../../src/daemon/scheduler.js';
import type { JobSpec } from '../../src/daemon/schedule.js';
import { waitFor } from '../helpers/wait.js';

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';

let dir: string;
let config: Config;
let logs: Array<Record<string, unknown>>;
let daemons: Daemon[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-daemon-unit-'));
  config = parseConfig(
    `
store: { kind: local, path: ./store }
encryption: { recipients: [${RECIPIENT}] }
tiers: { critical: { rto: 1m, rpo: 2s } }
schedule: { backups: { '*': '* * * * * *' } }
health: { listen: "127.0.0.1:0", token: "\${TOKEN}" }
components:
  redis: { kind: redis, password: "redis-pw-not-logged" }
  config: { kind: files, roots: [/opt/tyk-gateway], tier: critical }
`,
    path.join(dir, 'tykdr.yaml'),
    { TOKEN: 'health-token-123' },
  );
  logs = [];
  daemons = [];
});

afterEach(async () => {
  for (const d of daemons) await d.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Waits until `n` log lines say `msg` (a job's last step: what it logs when it ends). */
const logged = (msg: string, n = 1) =>
  waitFor(() => logs.filter((l) => l.msg === msg).length >= n, { timeoutMs: 5000, intervalMs: 5, what: `${n} log line(s) "${msg}"`, detail: () => JSON.stringify(logs) });

/** A scheduler whose slots tests fire by hand. */
function manualScheduler() {
  const ticks = new Map<string, () => void>();
  const scheduler: Scheduler = {
    schedule: (name, _expr, tick) => {
      ticks.set(name, tick);
      return { stop: () => ticks.delete(name) };
    },
  };
  return { scheduler, fire: (name: string) => ticks.get(name)!(), tick: (name: string) => ticks.get(name)!, names: () => [...ticks.keys()] };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function manifest(id: string, at: Date, components = ['redis', 'config']): Manifest {
  return {
    format: MANIFEST_FORMAT,
    id,
    created_at: at.toISOString(),
    completed_at: new Date(at.getTime() + 500).toISOString(),
    tool: { name: 'tykdr', version: '0.1.0' },
    host: 'h',
    encryption: { scheme: 'age-v1', recipients: [], passphrase: false },
    consistency_spread_ms: 0,
    components: Object.fromEntries(
      components.map((c) => [
        c,
        {
          kind: c === 'redis' ? 'redis' : 'files',
          tier: 'critical',
          objective: { rto_seconds: 60, rpo_seconds: 2 },
          consistent_at: at.toISOString(),
          started_at: at.toISOString(),
          duration_ms: 250,
          artifact: { name: `${c}.x.zst.age`, format: 'x', compression: 'zstd' as const, encryption: 'age' as const, plaintext_bytes: 10, stored_bytes: 100, sha256: 'a'.repeat(64) },
          source: {},
        },
      ]),
    ),
  };
}

function recordingNotifier() {
  const events: Array<Omit<NotificationBody, 'time'>> = [];
  const notifier: Notifier = { notify: (e) => void events.push(e), close: async () => {} };
  return { notifier, events };
}

function makeDaemon(jobs: Partial<Jobs>, opts: { now?: () => Date; graceMs?: number; notifier?: Notifier } = {}) {
  const m = manualScheduler();
  const fail = () => Promise.reject(new Error('not stubbed'));
  const d = new Daemon({
    config,
    jobs: { backup: fail, prune: fail, verify: fail, drill: fail, ...jobs },
    log: jsonLogger({ write: (l) => logs.push(JSON.parse(l)), level: 'debug', secrets: ['redis-pw-not-logged'] }),
    instanceId: 'unit-1',
    useLeader: false,
    graceMs: opts.graceMs ?? 5000,
    scheduler: m.scheduler,
    notifier: opts.notifier ?? recordingNotifier().notifier,
    now: opts.now,
  });
  daemons.push(d);
  return { d, ...m };
}

const BACKUP = 'backup:redis,config';

describe('daemon core (injected jobs, hand-fired schedule)', () => {
  it('schedules one backup job for components sharing a cron, plus the other jobs', async () => {
    const { d, names } = makeDaemon({});
    await d.start();
    expect(names()).toEqual([BACKUP, 'prune', 'verify', 'drill-components', 'drill-full']);
    expect(d.isLeader).toBe(true);
  });

  it('never overlaps a job: a slot that comes while it runs is skipped and counted, not queued', async () => {
    const gate = deferred<BackupResult>();
    let calls = 0;
    const { d, fire } = makeDaemon({
      backup: async (components) => {
        calls++;
        expect(components).toEqual(['redis', 'config']);
        return gate.promise;
      },
    });
    await d.start();
    fire(BACKUP);
    await logged('job started');
    fire(BACKUP);
    fire(BACKUP);
    expect(calls).toBe(1);
    expect(d.metrics.get('tykdr_job_skipped_overlap_total', { job: BACKUP })).toBe(2);
    expect(logs.filter((l) => l.msg === 'skipped: the previous run is still going')).toHaveLength(2);
    gate.resolve({ id: '20261121T090000Z-abcdef', location: dir, manifest: manifest('20261121T090000Z-abcdef', new Date()) });
    await logged('backup complete');
    expect(d.metrics.get('tykdr_job_runs_total', { job: BACKUP, result: 'success' })).toBe(1);
    // After it finished, the next slot runs again; the skipped ones were not queued.
    fire(BACKUP);
    await logged('job started', 2);
    expect(calls).toBe(2);
    const text = d.metrics.render();
    expect(text).toContain('# TYPE tykdr_job_skipped_overlap_total counter');
    expect(text).toContain(`tykdr_job_skipped_overlap_total{job="${BACKUP}"} 2`);
    expect(text).toContain('tykdr_backup_last_bytes{component="redis"} 100');
    expect(text).toContain('tykdr_leader{instance="unit-1"} 1');
  });

  it('records a failed backup: /hello fails, failures counted, backup_failed sent with the component, nothing secret', async () => {
    const rec = recordingNotifier();
    const { d, fire } = makeDaemon(
      {
        backup: async () => {
          throw new TykdrError('sourceUnreachable', 'components.redis: Redis at redis://default:redis-pw-not-logged@127.0.0.1:1 is unreachable (ECONNREFUSED)', {
            fix: 'check components.redis.host and port',
          });
        },
      },
      { notifier: rec.notifier },
    );
    await d.start();
    fire(BACKUP);
    await logged('backup failed');
    const hello = d.hello();
    expect(hello.httpStatus).toBe(503);
    expect(hello.body.status).toBe('fail');
    expect(hello.body.details.redis![0]!.output).toContain('last backup failed at');
    expect(JSON.stringify(hello.body)).not.toContain('redis-pw-not-logged');
    expect(d.state.get('redis')!.failuresTotal).toBe(1);
    expect(d.metrics.render()).toContain('tykdr_backup_failures_total{component="config"} 1');
    expect(rec.events).toHaveLength(1);
    expect(rec.events[0]).toMatchObject({ event: 'backup_failed', component: 'redis', details: { components: ['redis', 'config'], error_kind: 'sourceUnreachable', fix: 'check components.redis.host and port' } });
    expect(rec.events[0]!.message).toBe('components.redis: Redis at redis://[redacted]@127.0.0.1:1 is unreachable (ECONNREFUSED)');
    const line = logs.find((l) => l.msg === 'backup failed')!;
    expect(line).toMatchObject({ level: 'error', job: BACKUP, error_kind: 'sourceUnreachable' });
    expect(JSON.stringify(logs)).not.toContain('redis-pw-not-logged');
  });

  it('loads where things stand from the store at start, and sends rpo_breached once per breach', async () => {
    let now = new Date('2026-11-21T09:00:00Z');
    const rec = recordingNotifier();
    const { d, fire } = makeDaemon(
      { backup: async () => ({ id: '20261121T090010Z-000002', location: dir, manifest: manifest('20261121T090010Z-000002', now) }) },
      { now: () => now, notifier: rec.notifier },
    );
    // A snapshot taken before the daemon started.
    const { LocalStore } = await import('../../src/backends/stores/local-store.js');
    const { Readable } = await import('node:stream');
    const store = new LocalStore(path.join(dir, 'store'));
    const old = manifest('20261121T085959Z-000001', new Date('2026-11-21T08:59:59Z'));
    await store.put('snapshots/20261121T085959Z-000001/manifest.json', Readable.from([Buffer.from(JSON.stringify(old))]));
    await d.start();
    expect(d.state.get('redis')!.lastSnapshot).toBe('20261121T085959Z-000001');
    expect(d.hello().body.status).toBe('pass');
    d.checkRpo();
    expect(rec.events).toHaveLength(0);
    now = new Date('2026-11-21T09:00:02Z'); // 3 s after the snapshot, RPO 2 s
    d.checkRpo();
    d.checkRpo();
    expect(d.hello().body.status).toBe('warn');
    expect(rec.events.map((e) => [e.event, e.component])).toEqual([
      ['rpo_breached', 'redis'],
      ['rpo_breached', 'config'],
    ]);
    expect(rec.events[0]!.details).toMatchObject({ tier: 'critical', rpo_seconds: 2, age_seconds: 3 });
    now = new Date('2026-11-21T09:00:10Z');
    fire(BACKUP);
    await logged('backup complete');
    expect(d.hello().body.status).toBe('pass');
    d.checkRpo();
    expect(logs.filter((l) => l.msg === 'RPO met again').map((l) => l.component)).toEqual(['redis', 'config']);
    now = new Date('2026-11-21T09:00:13Z');
    d.checkRpo();
    expect(rec.events.filter((e) => e.event === 'rpo_breached')).toHaveLength(4);
  });

  it('on stop, lets a running job finish within the grace period: exit 0', async () => {
    const gate = deferred<BackupResult>();
    let calls = 0;
    const { d, fire, tick } = makeDaemon({ backup: () => (calls++, gate.promise) }, { graceMs: 5000 });
    await d.start();
    fire(BACKUP);
    const late = tick(BACKUP);
    const stopped = d.stop();
    // The point: stop() is under way (waiting out the grace for the running job) when the late tick comes.
    await new Promise((r) => setTimeout(r, 50));
    late(); // a tick that races with stop is ignored
    expect(calls).toBe(1);
    gate.resolve({ id: '20261121T090000Z-abcdef', location: dir, manifest: manifest('20261121T090000Z-abcdef', new Date()) });
    expect(await stopped).toBe(0);
    expect(d.metrics.get('tykdr_job_runs_total', { job: BACKUP, result: 'success' })).toBe(1);
  }, 10_000);

  it('on stop, aborts a job still running after the grace period: exit 130, not a failure', async () => {
    let sawAbort = false;
    const rec = recordingNotifier();
    const { d, fire } = makeDaemon(
      {
        backup: (_c, signal) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              sawAbort = true;
              // A job takes a moment to clean up after an abort: the delay is the point.
              setTimeout(() => reject(new TykdrError('interrupted', 'backup interrupted; its objects were removed')), 20);
            }),
          ),
      },
      { graceMs: 200, notifier: rec.notifier },
    );
    await d.start();
    fire(BACKUP);
    const t = Date.now();
    expect(await d.stop()).toBe(130);
    expect(Date.now() - t).toBeGreaterThanOrEqual(190);
    expect(sawAbort).toBe(true);
    expect(d.metrics.get('tykdr_job_runs_total', { job: BACKUP, result: 'aborted' })).toBe(1);
    expect(d.state.get('redis')!.failuresTotal).toBe(0);
    expect(d.state.get('redis')!.runningSince).toBeUndefined();
    expect(rec.events).toHaveLength(0);
  });

  it('a second signal aborts at once', async () => {
    const { d, fire } = makeDaemon({ backup: (_c, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))) }, { graceMs: 60_000 });
    await d.start();
    fire(BACKUP);
    const force = new AbortController();
    const stopped = d.stop(force.signal);
    setTimeout(() => force.abort(), 50); // the second signal comes while the first one's grace (60 s) runs: the point
    expect(await stopped).toBe(130);
  });

  it('drills: metrics per plan and drill_passed / drill_failed per plan', async () => {
    const rec = recordingNotifier();
    const outcome: DrillOutcomes = {
      plans: [
        { plan: 'redis', passed: true, rtoSeconds: 42.5, snapshot: '20261121T090000Z-abcdef' },
        { plan: 'gateway', passed: false, rtoSeconds: null, reason: 'step gateway: files-restored failed' },
      ],
    };
    const { d, fire } = makeDaemon({ drill: async (kind) => (kind === 'components' ? outcome : { plans: [] }) }, { notifier: rec.notifier });
    await d.start();
    fire('drill-components');
    await waitFor(() => d.metrics.get('tykdr_job_runs_total', { job: 'drill-components', result: 'failure' }) === 1, { timeoutMs: 5000, intervalMs: 5, what: 'the drill run to be counted' });
    const text = d.metrics.render();
    expect(text).toContain('tykdr_drill_last_rto_seconds{plan="redis"} 42.5');
    expect(text).toContain('tykdr_drill_last_success{plan="redis"} 1');
    expect(text).toContain('tykdr_drill_last_success{plan="gateway"} 0');
    // Evidence age: set for the plan that passed, absent for the one that never did.
    expect(d.metrics.get('tykdr_drill_last_pass_timestamp_seconds', { plan: 'redis' })).toBe(d.metrics.get('tykdr_drill_last_timestamp_seconds', { plan: 'redis' }));
    expect(text).not.toContain('tykdr_drill_last_pass_timestamp_seconds{plan="gateway"}');
    expect(text).toContain('tykdr_job_runs_total{job="drill-components",result="failure"} 1');
    expect(rec.events.map((e) => [e.event, e.details.plan])).toEqual([
      ['drill_passed', 'redis'],
      ['drill_failed', 'gateway'],
    ]);
    expect(rec.events[0]!.snapshot).toBe('20261121T090000Z-abcdef');
  });

  it('loads the drill metrics from the drills on record at start (newest per plan)', async () => {
    const { d } = makeDaemon({
      drillHistory: async () => [
        { plan: 'full', passed: false, rtoSeconds: null, finishedAt: new Date('2026-10-01T05:10:00Z') },
        { plan: 'redis', passed: true, rtoSeconds: 31, finishedAt: new Date('2026-11-01T04:02:00Z') },
        { plan: 'redis', passed: false, rtoSeconds: 99, finishedAt: new Date('2026-10-01T04:02:00Z') },
        { plan: 'full', passed: true, rtoSeconds: 600, finishedAt: new Date('2026-07-01T05:10:00Z') },
      ],
    });
    await d.start();
    const text = d.metrics.render();
    expect(text).toContain('tykdr_drill_last_success{plan="redis"} 1');
    expect(text).toContain('tykdr_drill_last_rto_seconds{plan="redis"} 31');
    expect(text).toContain('tykdr_drill_last_success{plan="full"} 0');
    expect(text).not.toContain('tykdr_drill_last_rto_seconds{plan="full"}');
    expect(text).toContain(`tykdr_drill_last_timestamp_seconds{plan="redis"} ${Date.parse('2026-11-01T04:02:00Z') / 1000}`);
    // The newest *passing* drill: redis's newest passed; full's newest failed, an older one passed.
    expect(text).toContain(`tykdr_drill_last_pass_timestamp_seconds{plan="redis"} ${Date.parse('2026-11-01T04:02:00Z') / 1000}`);
    expect(text).toContain(`tykdr_drill_last_pass_timestamp_seconds{plan="full"} ${Date.parse('2026-07-01T05:10:00Z') / 1000}`);
  });

  it('starts without drill metrics when the history cannot be read', async () => {
    const { d } = makeDaemon({ drillHistory: async () => Promise.reject(new Error('store down')) });
    await d.start();
    expect(logs.find((l) => l.msg === 'could not read the drill history; drill metrics start empty')).toMatchObject({ level: 'warn', error: 'store down' });
  });

  it('prune and verify results are logged; a problem counts as a failure', async () => {
    const { d, fire } = makeDaemon({
      prune: async () => ({ ok: true, message: 'removed 2 snapshot(s)' }),
      verify: async (pct) => ({ ok: false, message: `checked 3 object(s) (${pct}% sample): 1 failed`, details: { failures: [{ snapshot: 'x' }] } }),
    });
    await d.start();
    fire('prune');
    await logged('prune complete: removed 2 snapshot(s)');
    fire('verify');
    await logged('verify failed');
    expect(logs.find((l) => l.job === 'prune' && l.level === 'info' && String(l.msg).startsWith('prune complete'))!.msg).toBe('prune complete: removed 2 snapshot(s)');
    const v = logs.find((l) => l.msg === 'verify failed')!;
    expect(v).toMatchObject({ level: 'error', error: 'checked 3 object(s) (10% sample): 1 failed', details: { failures: [{ snapshot: 'x' }] } });
    expect(d.metrics.get('tykdr_job_runs_total', { job: 'verify', result: 'failure' })).toBe(1);
  });

  it('serves /hello and /metrics behind the bearer token', async () => {
    const { d } = makeDaemon({});
    await d.start();
    const { port } = d.healthAddress!;
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/hello`)).status).toBe(401);
    expect((await fetch(`${base}/hello`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const res = await fetch(`${base}/hello`, { headers: { authorization: 'Bearer health-token-123' } });
    expect(res.status).toBe(200); // never backed up, within the first interval: warn
    const body = (await res.json()) as { status: string; description: string; details: Record<string, unknown> };
    expect(body.status).toBe('warn');
    expect(body.description).toBe('tykdr daemon unit-1 (sole instance)');
    expect(Object.keys(body.details)).toEqual(['redis', 'config']);
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer health-token-123' } });
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await metrics.text();
    expect(text).toContain('# TYPE tykdr_backup_rpo_seconds gauge');
    expect(text).toContain('tykdr_backup_rpo_seconds{component="redis"} 2');
    expect((await fetch(`${base}/nope`, { headers: { authorization: 'Bearer health-token-123' } })).status).toBe(404);
  });

  it('ignores slots when stopping and runs nothing after stop', async () => {
    let calls = 0;
    const { d, fire } = makeDaemon({ prune: async () => (calls++, { ok: true, message: '' }) });
    await d.start();
    await d.stop();
    const spec: JobSpec = { name: 'prune', kind: 'prune', cron: '* * * * *', task: { kind: 'prune' }, reason: '' };
    expect(await d.trigger(spec)).toBeUndefined();
    expect(() => fire('prune')).toThrow(); // unscheduled
    expect(calls).toBe(0);
  });

  it('does not run prune while verify or a drill runs (and the other way round)', async () => {
    const gate = deferred<{ ok: boolean; message: string }>();
    let prunes = 0;
    const { d, fire } = makeDaemon({ verify: () => gate.promise, prune: async () => (prunes++, { ok: true, message: '' }) });
    await d.start();
    fire('verify');
    fire('prune');
    expect(prunes).toBe(0);
    expect(d.metrics.get('tykdr_job_skipped_conflict_total', { job: 'prune' })).toBe(1);
    expect(logs.find((l) => l.msg === 'skipped: prune does not run while verify runs')).toMatchObject({ level: 'warn', running: ['verify'] });
    gate.resolve({ ok: true, message: 'fine' });
    await logged('verify complete: fine');
    fire('prune');
    await logged('prune complete: ');
    expect(prunes).toBe(1);
  });
});

describe('daemon --once (no leader)', () => {
  function once(jobs: Partial<Jobs>, only: Array<'backup' | 'prune' | 'verify' | 'drill-components' | 'drill-full'> = [], graceMs = 5000) {
    const fail = () => Promise.reject(new Error('not stubbed'));
    const d = new Daemon({
      config,
      jobs: { backup: fail, prune: fail, verify: fail, drill: fail, ...jobs },
      log: jsonLogger({ write: (l) => logs.push(JSON.parse(l)) }),
      instanceId: 'once-1',
      useLeader: false,
      only,
      graceMs,
      healthListen: false,
      notifier: recordingNotifier().notifier,
    });
    return d;
  }

  it('runs one backup of every component, then the other jobs in order, and exits 0', async () => {
    const calls: string[] = [];
    const d = once({
      backup: async (c) => (calls.push(`backup ${c.join(',')}`), { id: 'i', location: dir, manifest: manifest('20261121T090000Z-abcdef', new Date()) }),
      prune: async () => (calls.push('prune'), { ok: true, message: '' }),
      verify: async (p) => (calls.push(`verify ${p}`), { ok: true, message: '' }),
      drill: async (k) => (calls.push(`drill ${k}`), { plans: [] }),
    });
    const never = new AbortController().signal;
    expect(await d.runOnce(never, never)).toBe(0);
    expect(calls).toEqual(['backup redis,config', 'prune', 'verify 10', 'drill components', 'drill full']);
    expect(d.healthAddress).toBeUndefined();
  });

  it('exits with the first failure\'s code after running the rest', async () => {
    const calls: string[] = [];
    const d = once(
      {
        backup: async () => {
          throw new TykdrError('storeError', 'local store /x is not a writable folder');
        },
        prune: async () => (calls.push('prune'), { ok: false, message: '1 snapshot could not be removed' }),
      },
      ['backup', 'prune'],
    );
    const never = new AbortController().signal;
    expect(await d.runOnce(never, never)).toBe(4);
    expect(calls).toEqual(['prune']);
  });

  it('on a stop signal: finishes or aborts the current job within the grace, runs nothing more, exits 130 when aborted', async () => {
    const calls: string[] = [];
    const d = once(
      {
        backup: (_c, signal) => (calls.push('backup'), new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))),
        prune: async () => (calls.push('prune'), { ok: true, message: '' }),
      },
      ['backup', 'prune'],
      150,
    );
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 50); // a stop signal while the backup runs: the point
    const t = Date.now();
    expect(await d.runOnce(stop.signal, new AbortController().signal)).toBe(130);
    expect(Date.now() - t).toBeGreaterThanOrEqual(190);
    expect(calls).toEqual(['backup']);
  });
});
