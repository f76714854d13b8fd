import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/core/config/load.js';
import { isAbortError } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import { runCommand } from '../../src/core/util/run-command.js';
import {
  checkDashboardHealth,
  checkGatewayHello,
  checkGatewayKeyProbe,
  checkGatewayReady,
  checkUpstreams,
  type UpstreamEvidence,
} from '../../src/verify/http-checks.js';
import { startGatewayStandin, startUpstream, type GatewayStandin, type Upstream } from '../helpers/gateway-standin.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const CANARY = 'canary-key-0f3a9c1e7b2d4e6f8a0b1c2d';
const cleanups: Array<() => Promise<unknown>> = [];
let redis: RedisServer;
let upstream: Upstream;

beforeAll(async () => {
  redis = await startRedis();
  cleanups.push(() => redis.stop());
  upstream = await startUpstream();
  cleanups.push(() => upstream.stop());
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function standin(opts: Partial<Parameters<typeof startGatewayStandin>[0]> = {}): Promise<GatewayStandin> {
  const gw = await startGatewayStandin({ redisPort: redis.port, upstreamUrl: upstream.url, ...opts });
  cleanups.push(() => gw.stop());
  return gw;
}

function gwConfig(url: string, extra: Partial<Gateway> = {}): Gateway {
  return { url, readyPath: '/ready', helloPath: '/hello', timeout: '3s', ...extra };
}

/** A redis-server on a chosen port, started late (startRedis picks its own port). */
async function startRedisOnPort(port: number): Promise<() => Promise<void>> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const exited = new Promise((r) => child.once('exit', r));
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

describe('gateway-ready', () => {
  it('passes once Redis comes up', async () => {
    const port = await freePort();
    const gw = await standin({ redisPort: port });
    let stopLate: (() => Promise<void>) | undefined;
    // The point: Redis comes up a second after the check started, so the check must retry until then.
    const late = setTimeout(() => void startRedisOnPort(port).then((s) => (stopLate = s)), 1000);
    try {
      const r = await checkGatewayReady(gwConfig(gw.url, { timeout: '10s' }));
      expect(r.status, r.detail).toBe('passed');
      expect(r.name).toBe('gateway-ready');
      expect(r.evidence?.attempts as number).toBeGreaterThan(1);
      expect(r.evidence?.timeToReadyMs as number).toBeGreaterThanOrEqual(900);
    } finally {
      clearTimeout(late);
      await stopLate?.();
    }
  });

  it('fails with a clear detail when Redis stays down', async () => {
    const gw = await standin({ redisPort: await freePort() });
    const t0 = Date.now();
    const r = await checkGatewayReady(gwConfig(gw.url, { timeout: '2s' }));
    expect(r.status).toBe('failed');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.detail).toMatch(/still answered 503 \("Redis connection not available"\).*cannot reach Redis/);
    expect(r.evidence).toMatchObject({ lastStatus: 503, timeToReadyMs: null });
  });

  it('rejects with an AbortError when aborted mid-poll', async () => {
    const gw = await standin({ redisPort: await freePort() });
    const t0 = Date.now();
    const err = await checkGatewayReady(gwConfig(gw.url, { timeout: '30s' }), AbortSignal.timeout(700)).catch((e: unknown) => e);
    expect(isAbortError(err)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('names the cause when nothing listens', async () => {
    const r = await checkGatewayReady(gwConfig(`http://127.0.0.1:${await freePort()}`, { timeout: '1s' }));
    expect(r.status).toBe('failed');
    expect(r.detail).toMatch(/no answer from .*connection refused/);
  });
});

describe('gateway-hello', () => {
  it('waits through the bare "pass" of the warm-up until details.redis appears', async () => {
    const gw = await standin({ warmupMs: 1500 });
    const r = await checkGatewayHello(gwConfig(gw.url));
    expect(r.status, r.detail).toBe('passed');
    expect(r.evidence).toMatchObject({ status: 'pass', details: { redis: 'pass' }, version: 'v5.14.0-standin' });
    expect(r.evidence?.timeToPassMs as number).toBeGreaterThanOrEqual(1400);
    expect(r.detail).toMatch(/says pass with redis checked/);
  });

  it('fails at once when the gateway says fail (Redis down)', async () => {
    const gw = await standin({ redisPort: await freePort() });
    const t0 = Date.now();
    const r = await checkGatewayHello(gwConfig(gw.url, { timeout: '10s' }));
    expect(r.status).toBe('failed');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.detail).toContain('says fail: redis fail ("storage: Redis is either down or was not configured")');
    expect(r.evidence).toMatchObject({ status: 'fail', details: { redis: 'fail' }, httpStatus: 503 });
  });

  it('keeps polling a warn and names the failing component at the timeout', async () => {
    const gw = await standin();
    gw.setDashboard('fail');
    const r = await checkGatewayHello(gwConfig(gw.url, { timeout: '2s' }));
    expect(r.status).toBe('failed');
    expect(r.detail).toMatch(/still says warn after 2\.0 s: dashboard fail \("dashboard is down\? Heartbeat is failing"\)/);
    expect(r.evidence?.attempts as number).toBeGreaterThan(2);
  });
});

describe('gateway-key-probe', () => {
  let gw: GatewayStandin;
  let client: Redis;
  beforeAll(async () => {
    gw = await standin();
    client = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true });
    await client.connect();
    cleanups.push(async () => client.disconnect());
  });
  const probeConfig = (key = CANARY) => gwConfig(gw.url, { keyProbe: { path: '/orders/', key: new Secret(key), expectStatus: 200 } });

  it('passes when the canary key is in Redis, and never shows the key', async () => {
    await client.set(`apikey-${CANARY}`, JSON.stringify({ org_id: 'org1', alias: 'canary' }));
    const hitsBefore = upstream.hits;
    const r = await checkGatewayKeyProbe(probeConfig());
    expect(r.status, r.detail).toBe('passed');
    expect(r.evidence).toMatchObject({ canaryStatus: 200, bogusKeyStatus: 403, noKeyStatus: 401 });
    expect(upstream.hits).toBeGreaterThan(hitsBefore);
    expect(JSON.stringify(r)).not.toContain(CANARY);
  });

  it('fails with a clear message when the key is gone (FLUSHALL, gateway restarted)', async () => {
    await client.flushall();
    await gw.restart();
    const r = await checkGatewayKeyProbe(probeConfig());
    expect(r.status).toBe('failed');
    expect(r.detail).toMatch(/canary key was refused with 403 \("Access to this API has been disallowed"\).*missing from the restored Redis/);
    expect(r.evidence?.attempts as number).toBeGreaterThan(1);
    expect(JSON.stringify(r)).not.toContain(CANARY);
  });

  it('fails at once when a random key is let through (unprotected path)', async () => {
    const open = createServer((_req, res) => res.end('{}')).listen(0, '127.0.0.1');
    await new Promise((r) => open.once('listening', r));
    cleanups.push(() => new Promise((r) => open.close(r)));
    const url = `http://127.0.0.1:${(open.address() as AddressInfo).port}`;
    const r = await checkGatewayKeyProbe(gwConfig(url, { timeout: '10s', keyProbe: { path: '/', key: new Secret(CANARY), expectStatus: 200 } }));
    expect(r.status).toBe('failed');
    expect(r.durationMs).toBeLessThan(3000);
    expect(r.detail).toMatch(/random key was let through \(200\).*not protected by keys/);
  });

  it('is skipped without gateway.keyProbe', async () => {
    const r = await checkGatewayKeyProbe(gwConfig(gw.url));
    expect(r).toMatchObject({ name: 'gateway-key-probe', status: 'skipped' });
    expect(r.detail).toMatch(/keyProbe is not configured/);
  });
});

describe('upstream (Tyk uptime tests)', () => {
  const up = (checkList: NonNullable<Gateway['uptimeTests']>['checkList'], failureTriggerSampleSize = 3) =>
    checkUpstreams({ uptimeTests: { failureTriggerSampleSize, checkList } });
  const checks = (r: Awaited<ReturnType<typeof checkUpstreams>>) => (r.evidence?.checks ?? []) as UpstreamEvidence[];

  it('short form: GET, passes on 200', async () => {
    upstream.setHealthy(true);
    const r = await up([{ url: `${upstream.url}/health?apikey=s3cr3t&dir=x` }]);
    expect(r.status, r.detail).toBe('passed');
    expect(checks(r)[0]).toMatchObject({ method: 'GET', form: 'short', up: true, attempts: 1, lastStatus: 200 });
    expect(JSON.stringify(r)).not.toContain('s3cr3t');
    expect(checks(r)[0]!.url).toContain('dir=x');
  });

  it('long form: method, headers and the base64 body arrive decoded', async () => {
    const before = upstream.received.length;
    const text = 'THIS IS A BODY OBJECT TEXT\r\n\r\nMore stuff here';
    const r = await up([
      { url: `${upstream.url}/post`, method: 'POST', headers: { this: 'that', 'x-secret-header': 'hidden-value' }, body: Buffer.from(text).toString('base64') },
    ]);
    expect(r.status, r.detail).toBe('passed');
    const got = upstream.received[before]!;
    expect(got).toMatchObject({ method: 'POST', path: '/post', body: text });
    expect(got.headers.this).toBe('that');
    expect(checks(r)[0]).toMatchObject({ form: 'long', headerNames: ['this', 'x-secret-header'], timeoutMs: 500 });
    expect(JSON.stringify(r)).not.toContain('hidden-value');
  });

  it('long form: the 500 ms timeout is enforced on a hanging upstream', async () => {
    upstream.setHealthy('hang');
    try {
      const t0 = Date.now();
      const r = await up([{ url: `${upstream.url}/slow`, method: 'GET', headers: {} }], 3);
      const took = Date.now() - t0;
      expect(r.status).toBe('failed');
      expect(took).toBeLessThan(3 * 500 + 2 * 250 + 1000);
      expect(took).toBeGreaterThanOrEqual(3 * 500);
      expect(checks(r)[0]).toMatchObject({ up: false, attempts: 3, lastError: 'timed out after 500 ms' });
      expect(r.detail).toMatch(/1 of 1 upstream check\(s\) down.*GET .*\/slow timed out after 500 ms \(3 of 3 sample\(s\)\)/);
    } finally {
      upstream.setHealthy(true);
    }
  });

  it('counts a check down only after failureTriggerSampleSize failures in a row', async () => {
    upstream.failNext(2);
    const passed = await up([{ url: `${upstream.url}/flaky` }], 3);
    expect(passed.status, passed.detail).toBe('passed');
    expect(checks(passed)[0]).toMatchObject({ up: true, attempts: 3 });

    upstream.failNext(3);
    const failed = await up([{ url: `${upstream.url}/flaky` }], 3);
    expect(failed.status).toBe('failed');
    expect(checks(failed)[0]).toMatchObject({ up: false, attempts: 3, lastStatus: 500 });
    expect(failed.detail).toContain('answered 500 (Tyk counts only 200 as up)');
  });

  it('follows redirects, sends URL user-info as Basic auth, and counts only 200 as up (like Tyk)', async () => {
    const before = upstream.received.length;
    const r = await up([{ url: `${upstream.url.replace('//', '//probe:pa55word@')}/redirect-to/status/200` }, { url: `${upstream.url}/status/204` }], 1);
    expect(checks(r).map((c) => [c.up, c.lastStatus])).toEqual([[true, 200], [false, 204]]);
    const basic = `Basic ${Buffer.from('probe:pa55word').toString('base64')}`;
    expect(upstream.received.slice(before).filter((q) => q.path !== '/status/204').map((q) => [q.path, q.headers.authorization])).toEqual([
      ['/redirect-to/status/200', basic],
      ['/status/200', basic],
    ]);
    expect(JSON.stringify(r)).not.toContain('pa55word');
    expect(r.detail).toContain('answered 204 (Tyk counts only 200 as up)');
  });

  it('reports each URL, and a refused connection', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/`;
    const r = await up([{ url: `${upstream.url}/a` }, { url: dead }], 2);
    expect(r.status).toBe('failed');
    expect(checks(r).map((c) => c.up)).toEqual([true, false]);
    expect(r.detail).toMatch(/1 of 2 .*connection refused/);
  });

  it('is skipped without gateway.uptimeTests', async () => {
    expect((await checkUpstreams({})).status).toBe('skipped');
  });
});

describe('dashboard-health', () => {
  let answers: Array<[number, string]> = [];
  let url: string;
  beforeAll(async () => {
    const srv = createServer((req, res) => {
      const [status, body] = answers.length > 1 ? answers.shift()! : answers[0]!;
      res.writeHead(req.url === '/api/health' ? status : 404, { 'content-type': 'application/json' });
      res.end(body);
    }).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    cleanups.push(() => new Promise((r) => srv.close(r)));
    url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  });
  const db = { healthPath: '/api/health', timeout: '3s' };

  it('polls until 200 with status ok', async () => {
    answers = [[503, 'starting'], [200, '{"status":"fail"}'], [200, '{"status":"ok","message":"Dashboard is healthy"}']];
    const r = await checkDashboardHealth({ ...db, url });
    expect(r.status, r.detail).toBe('passed');
    expect(r.evidence).toMatchObject({ attempts: 3, lastStatus: 200, reportedStatus: 'ok' });
  });

  it('fails when the JSON status never becomes healthy', async () => {
    answers = [[200, '{"status":"fail"}']];
    const r = await checkDashboardHealth({ ...db, url, timeout: '1s' });
    expect(r.status).toBe('failed');
    expect(r.detail).toMatch(/answered 200 but reports status "fail"/);
  });
});

describe('runCommand', () => {
  it('returns the exit code and the tails of the output', async () => {
    const r = await runCommand('head -c 10000 /dev/zero | tr "\\0" a; echo END; echo oops >&2; exit 3', { timeoutMs: 10_000 });
    expect(r).toMatchObject({ code: 3, signal: null, timedOut: false });
    expect(r.stdoutTail.length).toBeLessThanOrEqual(4096);
    expect(r.stdoutTail.endsWith('aaaEND\n')).toBe(true);
    expect(r.stderrTail).toBe('oops\n');
  });

  it('passes env', async () => {
    const r = await runCommand('echo "$TYKDR_TEST_VAR"', { timeoutMs: 5000, env: { ...process.env, TYKDR_TEST_VAR: 'hello' } });
    expect(r.stdoutTail).toBe('hello\n');
  });

  it('kills the whole process group on timeout', async () => {
    const r = await runCommand('sleep 30 & echo $!; wait', { timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.durationMs).toBeLessThan(3000);
    const pid = Number(r.stdoutTail.trim());
    expect(pid).toBeGreaterThan(0);
    // SIGKILL is delivered asynchronously: the background `sleep` must be gone soon after, not necessarily at once.
    await waitFor(() => !alive(pid), { timeoutMs: 2000, intervalMs: 20, what: `the background sleep (pid ${pid}) to be killed with its group` });
  });

  it('kills the group and rejects with an AbortError on abort', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300); // the point: an abort while the command runs (`sleep 30` cannot end before it)
    const err = await runCommand('sleep 30', { timeoutMs: 10_000, signal: ac.signal }).catch((e: unknown) => e);
    expect(isAbortError(err)).toBe(true);
  });
});

/** True when the process exists and is not a zombie (a container's PID 1 may not reap orphans). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
