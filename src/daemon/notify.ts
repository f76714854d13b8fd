import type { Config } from '../core/config/load.js';
import { parseDuration } from '../core/duration.js';
import { TOOL_VERSION } from '../core/version.js';
import { errorMessage, type Logger } from './log.js';
import type { Metrics } from './metrics.js';

export type EventName = 'backup_failed' | 'rpo_breached' | 'drill_failed' | 'drill_passed';

/** The JSON body a webhook receives. No secrets: messages are redacted before they get here. */
export interface NotificationBody {
  event: EventName;
  time: string;
  component?: string;
  snapshot?: string;
  message: string;
  details: Record<string, unknown>;
}

/**
 * Contract: `notify` never blocks and never throws; delivery happens in the background, one queue per
 * webhook (bounded: the oldest pending event is dropped when full), each attempt with its own timeout,
 * retried with exponential backoff and jitter up to the webhook's `retries`. `close` stops taking
 * events and gives pending deliveries until the deadline, then abandons them.
 */
export interface Notifier {
  notify(event: Omit<NotificationBody, 'time'>): void;
  close(timeoutMs: number): Promise<void>;
}

export const noNotifier: Notifier = { notify: () => {}, close: async () => {} };

export interface WebhookNotifierOptions {
  webhooks: Config['notifications']['webhooks'];
  log: Logger;
  metrics?: Metrics;
  /** First retry delay; doubles per retry, capped at maxBackoffMs; half of each delay is random (jitter). */
  backoffMs?: number;
  maxBackoffMs?: number;
  queueLimit?: number;
  now?: () => Date;
  fetch?: typeof fetch;
}

export function webhookNotifier(opts: WebhookNotifierOptions): Notifier {
  const { log } = opts;
  const now = opts.now ?? (() => new Date());
  const doFetch = opts.fetch ?? fetch;
  const backoff = opts.backoffMs ?? 1000;
  const maxBackoff = opts.maxBackoffMs ?? 60_000;
  const limit = opts.queueLimit ?? 100;
  const closing = new AbortController();
  opts.metrics?.define('tykdr_notifications_sent_total', 'counter', 'Webhook deliveries that got a 2xx answer.');
  opts.metrics?.define('tykdr_notifications_failed_total', 'counter', 'Webhook deliveries abandoned after every retry.');
  opts.metrics?.define('tykdr_notifications_dropped_total', 'counter', 'Events dropped because a webhook queue was full or the daemon stopped.');

  const queues = opts.webhooks.map((hook, i) => {
    const label = { webhook: `${i}:${safeUrl(hook.url)}` };
    const timeoutMs = parseDuration(hook.timeout) ?? 10_000;
    const pending: NotificationBody[] = [];
    let busy: Promise<void> | null = null;
    const deliver = async (body: NotificationBody) => {
      const attempts = 1 + hook.retries;
      let lastProblem = '';
      for (let attempt = 1; attempt <= attempts; attempt++) {
        if (closing.signal.aborted) break;
        const timeout = AbortSignal.timeout(timeoutMs);
        try {
          const res = await doFetch(hook.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'user-agent': `tykdr/${TOOL_VERSION}`,
              ...Object.fromEntries(Object.entries(hook.headers).map(([k, v]) => [k, v.reveal()])),
            },
            body: JSON.stringify(body),
            signal: AbortSignal.any([timeout, closing.signal]),
          });
          await res.arrayBuffer().catch(() => undefined);
          if (res.ok) {
            opts.metrics?.inc('tykdr_notifications_sent_total', { ...label, event: body.event });
            log.debug('webhook delivered', { webhook: label.webhook, event: body.event, attempt, status: res.status });
            return;
          }
          lastProblem = `HTTP ${res.status}`;
          // Client errors other than 408/429 will not improve by retrying.
          if (res.status < 500 && res.status !== 408 && res.status !== 429) break;
        } catch (err) {
          lastProblem = timeout.aborted ? `no answer within ${timeoutMs} ms` : errorMessage(err);
        }
        if (attempt < attempts && !closing.signal.aborted) {
          log.warn('webhook attempt failed; retrying', { webhook: label.webhook, event: body.event, attempt, error: lastProblem });
          await sleep(jitter(Math.min(maxBackoff, backoff * 2 ** (attempt - 1))), closing.signal);
        }
      }
      opts.metrics?.inc('tykdr_notifications_failed_total', { ...label, event: body.event });
      log.error('webhook delivery failed', { webhook: label.webhook, event: body.event, error: lastProblem || 'daemon stopping' });
    };
    const pump = async () => {
      while (pending.length) {
        const body = pending.shift()!;
        try {
          await deliver(body);
        } catch (err) {
          log.error('webhook delivery crashed', { webhook: label.webhook, error: err });
        }
      }
      busy = null;
    };
    return {
      hook,
      push(body: NotificationBody) {
        if (!hook.events.includes(body.event)) return;
        if (pending.length >= limit) {
          const dropped = pending.shift()!;
          opts.metrics?.inc('tykdr_notifications_dropped_total', label);
          log.warn('webhook queue full: dropped the oldest event', { webhook: label.webhook, event: dropped.event });
        }
        pending.push(body);
        busy ??= pump();
      },
      idle: () => busy ?? Promise.resolve(),
      abandon() {
        if (pending.length) opts.metrics?.inc('tykdr_notifications_dropped_total', label, pending.length);
        pending.length = 0;
      },
    };
  });

  let closed = false;
  return {
    notify(event) {
      if (closed) return;
      const body: NotificationBody = { ...event, message: log.redact(event.message), time: now().toISOString() };
      for (const q of queues) q.push(body);
    },
    async close(timeoutMs) {
      closed = true;
      const all = Promise.all(queues.map((q) => q.idle()));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        for (const q of queues) q.abandon();
        closing.abort();
        await all;
        log.warn('stopped with webhook deliveries still pending; they were abandoned');
      }
    },
  };
}

/** Half the delay fixed, half random: spreads retries of many daemons without shortening the wait much. */
function jitter(ms: number): number {
  return ms / 2 + Math.random() * (ms / 2);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A webhook URL fit for logs and labels: scheme and host only. Credentials, paths and query strings are
 * left out because webhook URLs often carry their token there (e.g. Slack's /services/T.../B.../<token>).
 */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' && !u.search ? '' : '/…'}`;
  } catch {
    return '(invalid url)';
  }
}
