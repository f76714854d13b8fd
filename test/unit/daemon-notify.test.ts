import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.js';
import { jsonLogger } from '../../src/daemon/log.js';
import { Metrics } from '../../src/daemon/metrics.js';
import { webhookNotifier } from '../../src/daemon/notify.js';

interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  servers = [];
});

async function receiver(answer: (n: number, res: ServerResponse) => void) {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      got.push({ at: Date.now(), headers: req.headers, body: JSON.parse(data) });
      answer(got.length, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=abc`, got };
}

const hook = (url: string, over: Record<string, unknown> = {}) => ({
  url,
  events: ['backup_failed', 'rpo_breached', 'drill_failed', 'drill_passed'] as Array<'backup_failed' | 'rpo_breached' | 'drill_failed' | 'drill_passed'>,
  headers: { Authorization: new Secret('Bearer hook-secret') },
  retries: 3,
  timeout: '2s',
  ...over,
});

function logger() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: jsonLogger({ write: (l) => lines.push(JSON.parse(l)), level: 'debug', secrets: ['hook-secret'] }) };
}

describe('webhook notifier', () => {
  it('posts the event JSON with the configured headers, retrying with backoff after a 500', async () => {
    const r = await receiver((n, res) => res.writeHead(n === 1 ? 500 : 204).end());
    const { lines, log } = logger();
    const metrics = new Metrics();
    const n = webhookNotifier({ webhooks: [hook(r.url)], log, metrics, backoffMs: 100 });
    const t = Date.now();
    n.notify({ event: 'backup_failed', component: 'redis', message: 'components.redis: unreachable at redis://u:pw@h', details: { components: ['redis'] } });
    await n.close(5000);
    expect(r.got).toHaveLength(2);
    expect(r.got[1]!.at - r.got[0]!.at).toBeGreaterThanOrEqual(50); // jitter keeps at least half the delay
    expect(Date.now() - t).toBeLessThan(2000);
    const { body, headers } = r.got[1]!;
    expect(headers.authorization).toBe('Bearer hook-secret');
    expect(headers['content-type']).toBe('application/json');
    expect(body).toEqual({
      event: 'backup_failed',
      component: 'redis',
      message: 'components.redis: unreachable at redis://[redacted]@h',
      details: { components: ['redis'] },
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(lines.some((l) => l.msg === 'webhook attempt failed; retrying' && l.error === 'HTTP 500')).toBe(true);
    expect(JSON.stringify(lines)).not.toContain('hook-secret');
    expect(JSON.stringify(lines)).not.toContain('token=abc');
    expect(metrics.render()).toMatch(/tykdr_notifications_sent_total\{event="backup_failed",webhook="0:http:\/\/127\.0\.0\.1:\d+\/…"\} 1/);
  });

  it('sends only the events a webhook subscribes to, and does not retry other 4xx answers', async () => {
    const r = await receiver((_n, res) => res.writeHead(400).end());
    const { lines, log } = logger();
    const n = webhookNotifier({ webhooks: [hook(r.url, { events: ['drill_failed'] })], log, backoffMs: 10 });
    n.notify({ event: 'backup_failed', message: 'x', details: {} });
    n.notify({ event: 'drill_failed', message: 'y', details: {} });
    await n.close(5000);
    expect(r.got.map((g) => g.body.event)).toEqual(['drill_failed']);
    expect(lines.find((l) => l.msg === 'webhook delivery failed')).toMatchObject({ level: 'error', error: 'HTTP 400' });
  });

  it('gives up after `retries` and times out each attempt', async () => {
    const r = await receiver(() => {
      /* never answers */
    });
    const { lines, log } = logger();
    const n = webhookNotifier({ webhooks: [hook(r.url, { retries: 1, timeout: '200ms' })], log, backoffMs: 10 });
    n.notify({ event: 'rpo_breached', message: 'late', details: {} });
    await n.close(5000);
    expect(r.got).toHaveLength(2);
    expect(lines.find((l) => l.msg === 'webhook delivery failed')).toMatchObject({ error: 'no answer within 200 ms' });
  });

  it('never blocks the caller; a full queue drops the oldest; close abandons what is left', async () => {
    const { lines, log } = logger();
    const metrics = new Metrics();
    // Nothing listens there: every attempt fails fast, and retries wait (backoff 10 s).
    const n = webhookNotifier({ webhooks: [hook('http://127.0.0.1:9/hook', { retries: 5 })], log, metrics, queueLimit: 2, backoffMs: 10_000 });
    const t = Date.now();
    for (let i = 0; i < 5; i++) n.notify({ event: 'backup_failed', message: `#${i}`, details: {} });
    // Far below one attempt's time (each notify returns at once; a GC pause or a busy machine may add some ms).
    expect(Date.now() - t).toBeLessThan(500);
    await n.close(300);
    expect(Date.now() - t).toBeLessThan(2000);
    expect(lines.filter((l) => l.msg === 'webhook queue full: dropped the oldest event')).toHaveLength(2);
    expect(lines.some((l) => l.msg === 'stopped with webhook deliveries still pending; they were abandoned')).toBe(true);
    expect(metrics.render()).toMatch(/tykdr_notifications_dropped_total\{webhook="0:http:\/\/127\.0\.0\.1:9\/…"\} 4/);
  });
});
