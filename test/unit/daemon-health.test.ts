import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.js';
import { TykdrError } from '../../src/core/errors.js';
import { componentHealth, helloResponse, overallStatus, type ComponentState } from '../../src/daemon/health.js';
import { parseListen } from '../../src/daemon/health-server.js';
import { jsonLogger, makeRedactor, secretValues } from '../../src/daemon/log.js';
import { Metrics } from '../../src/daemon/metrics.js';
import { safeUrl } from '../../src/daemon/notify.js';

const T0 = new Date('2026-11-21T09:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const state = (over: Partial<ComponentState> = {}): ComponentState => ({ name: 'redis', tier: 'critical', rpoMs: 300_000, failuresTotal: 0, ...over });

describe('component health', () => {
  const started = at(-3600);

  it('passes within the RPO, warns when late, fails past twice the RPO', () => {
    const s = state({ lastSuccessAt: T0, lastOutcome: 'success', lastSnapshot: 'x' });
    expect(componentHealth(s, at(0), started)).toMatchObject({ status: 'pass', ageSeconds: 0, late: false });
    expect(componentHealth(s, at(300), started)).toMatchObject({ status: 'pass', ageSeconds: 300, late: false });
    const warn = componentHealth(s, at(301), started);
    expect(warn).toMatchObject({ status: 'warn', ageSeconds: 301, late: true });
    expect(warn.output).toBe('last successful backup 5m 1s ago exceeds the RPO of 5m');
    expect(componentHealth(s, at(600), started)).toMatchObject({ status: 'warn', late: true });
    const fail = componentHealth(s, at(601), started);
    expect(fail).toMatchObject({ status: 'fail', ageSeconds: 601, late: true });
    expect(fail.output).toContain('more than twice the RPO of 5m');
  });

  it('a point-in-time stream newer than the last backup is the recovery point; an old one does not hide a late backup', () => {
    const streamed = state({ lastSuccessAt: at(-3000), lastOutcome: 'success', streamCoveredAt: at(-5) });
    const h = componentHealth(streamed, at(0), started);
    expect(h).toMatchObject({ status: 'pass', ageSeconds: 5, late: false });
    expect(h.output).toBe('point-in-time stream covers up to 5s ago (RPO 5m)');
    // The capture stopped: its coverage ages like a backup would.
    const stalled = componentHealth(streamed, at(400), started);
    expect(stalled).toMatchObject({ status: 'warn', late: true });
    expect(stalled.output).toContain('point-in-time stream covers up to 6m 45s ago exceeds the RPO of 5m');
    // A backup newer than the stream's coverage is what counts.
    const older = componentHealth(state({ lastSuccessAt: at(-10), lastOutcome: 'success', streamCoveredAt: at(-900) }), at(0), started);
    expect(older.output).toBe('last successful backup 10s ago (RPO 5m)');
  });

  it('fails when the last attempt failed, even within the RPO (which is not an RPO breach)', () => {
    const s = state({ lastSuccessAt: T0, lastOutcome: 'failure', lastFailureAt: at(60), lastError: 'components.redis: Redis at 127.0.0.1:6379 is unreachable (ECONNREFUSED)' });
    const h = componentHealth(s, at(61), started);
    expect(h).toMatchObject({ status: 'fail', late: false, ageSeconds: 61 });
    expect(h.output).toBe(
      'last backup failed at 2026-11-21T09:01:00.000Z: components.redis: Redis at 127.0.0.1:6379 is unreachable (ECONNREFUSED) (last success 1m 1s ago, RPO 5m)',
    );
    expect(componentHealth(s, at(400), started).late).toBe(true);
  });

  it('never backed up: warns during the first interval after start, then fails', () => {
    const s = state();
    const early = componentHealth(s, at(100), at(0));
    expect(early).toMatchObject({ status: 'warn', late: false });
    expect(early.ageSeconds).toBeUndefined();
    expect(early.output).toBe('no backup yet; the daemon started 1m 40s ago (RPO 5m)');
    expect(componentHealth(s, at(301), at(0))).toMatchObject({ status: 'fail', late: true });
  });

  it('does not flap to late while a backup that started in time is running, up to twice the RPO', () => {
    const s = state({ lastSuccessAt: T0, lastOutcome: 'success', runningSince: at(299) });
    expect(componentHealth(s, at(330), at(-10))).toMatchObject({ status: 'pass', late: false });
    expect(componentHealth(s, at(330), at(-10)).output).toContain('a backup is running');
    expect(componentHealth(s, at(601), at(-10))).toMatchObject({ status: 'fail', late: true });
    const startedLate = state({ lastSuccessAt: T0, lastOutcome: 'success', runningSince: at(310) });
    expect(componentHealth(startedLate, at(330), at(-10))).toMatchObject({ status: 'warn', late: true });
  });
});

describe('overall status (as Tyk: pass when all pass, fail when all fail, warn otherwise)', () => {
  it('combines', () => {
    expect(overallStatus(['pass', 'pass'])).toBe('pass');
    expect(overallStatus(['fail', 'fail'])).toBe('fail');
    expect(overallStatus(['pass', 'fail'])).toBe('warn');
    expect(overallStatus(['pass', 'warn'])).toBe('warn');
    expect(overallStatus(['warn', 'fail'])).toBe('warn');
  });

  it('builds the /hello body in the Health Check Response Format, 503 only for fail', () => {
    const good = state({ lastSuccessAt: T0, lastOutcome: 'success' });
    const files = state({ name: 'config', tier: 'important', rpoMs: 900_000, lastSuccessAt: at(-1000), lastOutcome: 'success' });
    const r = helloResponse([good, files], at(10), at(-3600), { version: '0.1.0', description: 'tykdr daemon x (leader)' });
    expect(r.httpStatus).toBe(200);
    expect(r.body).toEqual({
      status: 'warn',
      version: '0.1.0',
      description: 'tykdr daemon x (leader)',
      details: {
        redis: [{ status: 'pass', componentType: 'datastore', time: at(10).toISOString(), observedValue: 10, observedUnit: 's', output: 'last successful backup 10s ago (RPO 5m)' }],
        config: [
          {
            status: 'warn',
            componentType: 'datastore',
            time: at(10).toISOString(),
            observedValue: 1010,
            observedUnit: 's',
            output: 'last successful backup 16m 50s ago exceeds the RPO of 15m',
          },
        ],
      },
    });
    const bad = helloResponse([state(), state({ name: 'config' })], at(1000), at(0), { version: 'v', description: 'd' });
    expect(bad.body.status).toBe('fail');
    expect(bad.httpStatus).toBe(503);
    expect(bad.body.details.redis![0]!.observedValue).toBeUndefined();
  });
});

describe('metrics text', () => {
  it('prints HELP and TYPE for every family, samples sorted, labels escaped', () => {
    const m = new Metrics();
    m.define('tykdr_job_skipped_overlap_total', 'counter', 'Skipped runs.');
    m.define('tykdr_backup_last_bytes', 'gauge', 'Bytes.');
    m.define('tykdr_empty', 'gauge', 'Nothing yet.');
    m.inc('tykdr_job_skipped_overlap_total', { job: 'backup:redis,config' });
    m.inc('tykdr_job_skipped_overlap_total', { job: 'backup:redis,config' }, 2);
    m.set('tykdr_backup_last_bytes', { component: 'we"ird\\na\nme' }, 1234);
    m.collect((mm) => mm.set('tykdr_backup_last_bytes', { component: 'a' }, 1));
    expect(m.render()).toBe(
      [
        '# HELP tykdr_backup_last_bytes Bytes.',
        '# TYPE tykdr_backup_last_bytes gauge',
        'tykdr_backup_last_bytes{component="a"} 1',
        'tykdr_backup_last_bytes{component="we\\"ird\\\\na\\nme"} 1234',
        '# HELP tykdr_empty Nothing yet.',
        '# TYPE tykdr_empty gauge',
        '# HELP tykdr_job_skipped_overlap_total Skipped runs.',
        '# TYPE tykdr_job_skipped_overlap_total counter',
        'tykdr_job_skipped_overlap_total{job="backup:redis,config"} 3',
        '',
      ].join('\n'),
    );
    expect(m.get('tykdr_job_skipped_overlap_total', { job: 'backup:redis,config' })).toBe(3);
  });
});

describe('logs', () => {
  it('writes one JSON object per line with the standard fields, and redacts', () => {
    const lines: string[] = [];
    const config = { store: { secretAccessKey: new Secret('s3-secret-value') }, webhooks: [{ headers: { Authorization: new Secret('Bearer hook-token') } }] };
    const log = jsonLogger({ write: (l) => lines.push(l), secrets: secretValues(config), now: () => T0 });
    log.debug('dropped at info level');
    log.error('backup failed', {
      job: 'backup:redis',
      component: 'redis',
      duration_ms: 12,
      error: new TykdrError('storeError', 'PUT https://AKIA:s3-secret-value@bucket.s3/x?X-Amz-Signature=abc123&y=1 failed', { fix: 'check s3-secret-value' }),
      headers: { Authorization: 'Bearer hook-token' },
      secret: new Secret('zzz'),
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const o = JSON.parse(lines[0]!);
    expect(o).toEqual({
      time: T0.toISOString(),
      level: 'error',
      msg: 'backup failed',
      job: 'backup:redis',
      component: 'redis',
      duration_ms: 12,
      headers: { Authorization: '[redacted]' },
      secret: '[redacted]',
      error: 'PUT https://[redacted]@bucket.s3/x?X-Amz-Signature=[redacted]&y=1 failed',
      error_kind: 'storeError',
      fix: 'check [redacted]',
    });
    expect(lines[0]).not.toContain('s3-secret-value');
    expect(lines[0]).not.toContain('hook-token');
  });

  it('redacts URL credentials of any scheme', () => {
    const r = makeRedactor([]);
    expect(r('redis://default:pw@10.0.0.1:6379 and mongodb+srv://u:p@x/db?token=t0k')).toBe('redis://[redacted]@10.0.0.1:6379 and mongodb+srv://[redacted]@x/db?token=[redacted]');
  });

  it('shows only the scheme and host of webhook URLs', () => {
    expect(safeUrl('https://hooks.slack.com/services/T000/B000/XXXX')).toBe('https://hooks.slack.com/…');
    expect(safeUrl('http://u:p@127.0.0.1:9000')).toBe('http://127.0.0.1:9000');
  });
});

describe('health.listen', () => {
  it('parses host:port, [v6]:port and :port', () => {
    expect(parseListen('127.0.0.1:9187')).toEqual({ host: '127.0.0.1', port: 9187 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':9187')).toEqual({ host: '127.0.0.1', port: 9187 });
    expect(() => parseListen('9187')).toThrow(/not host:port/);
  });
});
