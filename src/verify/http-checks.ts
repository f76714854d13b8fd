import type { DashboardConfig } from '../core/config/schema.js';
import type { CheckResult } from '../core/restore/types.js';
import { checkResult } from '../core/checks/result.js';
import { formatMs, oneLine } from '../core/util/text.js';
import { joinUrl, safeUrl } from './url.js';
import { poll } from '../core/util/poll.js';
import { POLL_INTERVAL_MS, requestTimeout, timeoutOf } from './gateway-checks.js';
import { HttpFailure, httpRequest } from './http-request.js';

/**
 * HTTP checks that prove a restored Tyk deployment serves traffic. Each resolves with one CheckResult
 * (passed, failed with a one-line reason, or skipped) and rejects only with an AbortError when its signal
 * aborts. Details and evidence never hold a key, a header value or URL credentials.
 */
export { checkGatewayReady, checkGatewayHello } from './gateway-checks.js';
export { checkGatewayKeyProbe } from './key-probe.js';
export { checkGatewayLoaded } from './gateway-loaded.js';
export { checkUpstreams, LONG_FORM_TIMEOUT_MS, SHORT_FORM_SAFETY_CAP_MS, type UpstreamEvidence } from './upstream-check.js';

const HEALTHY_WORDS = new Set(['ok', 'pass', 'passed', 'healthy', 'up']);

interface DashboardState {
  status?: number;
  /** The JSON `status` field, when the body had one. */
  reported?: string;
  text?: string;
  error?: string;
}

/**
 * `dashboard-health`: polls GET url+healthPath until it answers 200 (and, when the body is JSON with a
 * string `status`, that status is ok/pass/healthy/up) or dashboard.timeout runs out.
 */
export async function checkDashboardHealth(
  db: Pick<DashboardConfig, 'url' | 'healthPath' | 'timeout'>,
  signal?: AbortSignal,
): Promise<CheckResult> {
  const started = Date.now();
  const url = joinUrl(db.url, db.healthPath);
  const shown = safeUrl(url);
  const timeoutMs = timeoutOf(db.timeout);
  const out = await poll<DashboardState>({ timeoutMs, intervalMs: POLL_INTERVAL_MS, signal }, async (left) => {
    try {
      const a = await httpRequest(url, { timeoutMs: requestTimeout(left), signal, maxBodyBytes: 16 * 1024 });
      const state: DashboardState = { status: a.status, text: oneLine(a.body, 120) };
      try {
        const j = JSON.parse(a.body) as { status?: unknown };
        if (typeof j?.status === 'string') state.reported = j.status;
      } catch {
        // a plain-text health answer is judged by its HTTP status alone
      }
      const healthy = state.reported === undefined || HEALTHY_WORDS.has(state.reported.toLowerCase());
      return { done: a.status === 200 && healthy, state };
    } catch (err) {
      if (err instanceof HttpFailure) return { done: false, state: { error: err.message } };
      throw err;
    }
  });
  const s = out.state;
  const evidence = {
    url: shown,
    attempts: out.attempts,
    lastStatus: s.status ?? null,
    reportedStatus: s.reported ?? null,
    lastError: s.error ?? null,
    timeToHealthyMs: out.done ? out.elapsedMs : null,
    timeoutMs,
  };
  if (out.done) {
    const reported = s.reported === undefined ? '' : ` (status "${s.reported}")`;
    return checkResult('dashboard-health', 'passed', `${db.healthPath} answered 200${reported} after ${formatMs(out.elapsedMs)}`, evidence, started);
  }
  let detail: string;
  if (s.error !== undefined) {
    detail = `no answer from ${shown} within ${formatMs(timeoutMs)}: ${s.error}; is the Dashboard running, and is dashboard.url right?`;
  } else if (s.status === 200) {
    detail = `${shown} answered 200 but reports status "${s.reported}" after ${formatMs(timeoutMs)}: the Dashboard is up but unhealthy (check its database and Redis)`;
  } else {
    detail = `${shown} answered ${s.status}${s.text ? ` ("${s.text}")` : ''}, not 200, until the ${formatMs(timeoutMs)} timeout; check the Dashboard log and its database`;
  }
  return checkResult('dashboard-health', 'failed', detail, evidence, started);
}
