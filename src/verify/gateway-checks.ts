import type { Gateway } from '../core/config/load.js';
import { parseDuration } from '../core/duration.js';
import type { CheckResult } from '../core/restore/types.js';
import { checkResult } from '../core/checks/result.js';
import { formatMs, oneLine } from '../core/util/text.js';
import { joinUrl, safeUrl } from './url.js';
import { poll } from '../core/util/poll.js';
import { HttpFailure, httpRequest } from './http-request.js';

export const POLL_INTERVAL_MS = 500;
const REQUEST_FLOOR_MS = 1000;
const REQUEST_CAP_MS = 10_000;

/** Timeout for one request of a polling check: what is left of the budget, within [1 s, 10 s]. */
export const requestTimeout = (remainingMs: number): number =>
  Math.min(Math.max(remainingMs, REQUEST_FLOOR_MS), REQUEST_CAP_MS);

/** A config duration in ms (config is validated on load; the fallback is the schema default). */
export const timeoutOf = (text: string): number => parseDuration(text) ?? 120_000;

/** `message` or `error` of a JSON body (Tyk's error shape), else the start of the text. */
export function answerMessage(body: string): string {
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    const m = j.message ?? j.error;
    if (typeof m === 'string') return oneLine(m, 120);
  } catch {
    // not JSON
  }
  return oneLine(body, 80);
}

interface ProbeState {
  status?: number;
  message?: string;
  error?: string;
}

/**
 * `gateway-ready`: polls GET url+readyPath until it answers 200 or gateway.timeout runs out. Tyk answers
 * 503 until Redis is reachable and its APIs are loaded. Resolves with a result; rejects only on abort.
 */
export async function checkGatewayReady(
  gw: Pick<Gateway, 'url' | 'readyPath' | 'timeout'>,
  signal?: AbortSignal,
): Promise<CheckResult> {
  const started = Date.now();
  const url = joinUrl(gw.url, gw.readyPath);
  const timeoutMs = timeoutOf(gw.timeout);
  const out = await poll<ProbeState>({ timeoutMs, intervalMs: POLL_INTERVAL_MS, signal }, async (left) => {
    try {
      const a = await httpRequest(url, { timeoutMs: requestTimeout(left), signal, maxBodyBytes: 4096 });
      return { done: a.status === 200, state: { status: a.status, message: answerMessage(a.body) } };
    } catch (err) {
      if (err instanceof HttpFailure) return { done: false, state: { error: err.message } };
      throw err;
    }
  });
  const s = out.state;
  const evidence = {
    url: safeUrl(url),
    attempts: out.attempts,
    lastStatus: s.status ?? null,
    lastError: s.error ?? null,
    timeToReadyMs: out.done ? out.elapsedMs : null,
    timeoutMs,
  };
  const shown = safeUrl(url);
  if (out.done) {
    return checkResult('gateway-ready', 'passed', `${gw.readyPath} answered 200 after ${formatMs(out.elapsedMs)} (${out.attempts} attempt(s))`, evidence, started);
  }
  const said = s.message ? ` ("${s.message}")` : '';
  let detail: string;
  if (s.error !== undefined) {
    detail = `no answer from ${shown} within ${formatMs(timeoutMs)}: ${s.error}; is the gateway running, and is gateway.url right?`;
  } else if (s.status === 503) {
    detail = `${shown} still answered 503${said} after ${formatMs(timeoutMs)}: the gateway cannot reach Redis or has not loaded its APIs; check storage in tyk.conf and the gateway log`;
  } else if (s.status === 404) {
    detail = `${shown} answered 404: this gateway has no readiness endpoint (older Tyk releases lack /ready); fix gateway.readyPath or rely on gateway-hello`;
  } else {
    detail = `${shown} answered ${s.status}${said}, not 200, until the ${formatMs(timeoutMs)} timeout`;
  }
  return checkResult('gateway-ready', 'failed', detail, evidence, started);
}

interface HealthComponent {
  status?: unknown;
  output?: unknown;
  componentType?: unknown;
}

interface HealthBody {
  status?: unknown;
  version?: unknown;
  description?: unknown;
  details?: Record<string, HealthComponent>;
}

interface HelloState extends ProbeState {
  health?: HealthBody;
}

/**
 * `gateway-hello`: polls GET url+helloPath; the verdict is the JSON `status`, whatever the HTTP status
 * (Tyk answered 200 always; since v5.x a `fail` comes with 503, gateway/health_check.go determineHealthStatus).
 * Passes on `pass` with a `details.redis` entry: right after a start Tyk says `pass` with no details for
 * ~10 s, which proves nothing. `warn` is polled until the timeout; `fail` fails at once.
 */
export async function checkGatewayHello(
  gw: Pick<Gateway, 'url' | 'helloPath' | 'timeout'>,
  signal?: AbortSignal,
): Promise<CheckResult> {
  const started = Date.now();
  const url = joinUrl(gw.url, gw.helloPath);
  const shown = safeUrl(url);
  const timeoutMs = timeoutOf(gw.timeout);
  const out = await poll<HelloState>({ timeoutMs, intervalMs: POLL_INTERVAL_MS, signal }, async (left) => {
    let a;
    try {
      a = await httpRequest(url, { timeoutMs: requestTimeout(left), signal });
    } catch (err) {
      if (err instanceof HttpFailure) return { done: false, state: { error: err.message } };
      throw err;
    }
    // Any HTTP status is parsed: older Tyk always answers 200, newer answers 503 with status "fail".
    const state: HelloState = { status: a.status, message: answerMessage(a.body) };
    try {
      const j: unknown = JSON.parse(a.body);
      if (j !== null && typeof j === 'object' && !Array.isArray(j)) state.health = j as HealthBody;
    } catch {
      // not JSON: reported below
    }
    const h = state.health;
    const done = h?.status === 'fail' || (h?.status === 'pass' && h.details?.redis !== undefined);
    return { done, state };
  });

  const { health: h, error, status } = out.state;
  const details = Object.entries(h?.details ?? {});
  const evidence = {
    url: shown,
    attempts: out.attempts,
    status: typeof h?.status === 'string' ? h.status : null,
    version: typeof h?.version === 'string' ? h.version : null,
    description: typeof h?.description === 'string' ? h.description : null,
    details: Object.fromEntries(details.map(([k, v]) => [k, String(v?.status ?? 'unknown')])),
    httpStatus: status ?? null,
    lastError: error ?? null,
    timeToPassMs: out.done && h?.status === 'pass' ? out.elapsedMs : null,
    timeoutMs,
  };
  const notPass = details
    .filter(([, v]) => v?.status !== 'pass')
    .map(([k, v]) => `${k} ${String(v?.status ?? 'unknown')}${typeof v?.output === 'string' ? ` ("${oneLine(v.output, 100)}")` : ''}`)
    .join(', ');

  if (out.done && h?.status === 'pass') {
    const version = typeof h.version === 'string' ? ` (${h.version})` : '';
    return checkResult('gateway-hello', 'passed', `${gw.helloPath} says pass with ${details.map(([k]) => k).join(', ')} checked${version} after ${formatMs(out.elapsedMs)}`, evidence, started);
  }
  let detail: string;
  if (h?.status === 'fail') {
    detail = `${gw.helloPath} says fail: ${notPass || 'no details'}; the gateway cannot use its datastores (check Redis and storage in tyk.conf)`;
  } else if (h?.status === 'warn') {
    detail = `${gw.helloPath} still says warn after ${formatMs(timeoutMs)}: ${notPass || 'no details'}`;
  } else if (h?.status === 'pass') {
    detail = `${gw.helloPath} says pass but has reported no Redis check after ${formatMs(timeoutMs)} (Tyk fills details ~10 s after start); raise gateway.timeout`;
  } else if (error !== undefined) {
    detail = `no answer from ${shown} within ${formatMs(timeoutMs)}: ${error}; is the gateway running, and is gateway.url right?`;
  } else if (status !== 200) {
    detail = `${shown} answered HTTP ${status} without health JSON ("${out.state.message ?? ''}"): the gateway is in an error state, or gateway.helloPath (health_check_endpoint_name) is wrong`;
  } else {
    detail = `${shown} did not answer with health JSON (status pass/warn/fail): "${out.state.message ?? ''}"; is gateway.helloPath (health_check_endpoint_name) right?`;
  }
  return checkResult('gateway-hello', 'failed', detail, evidence, started);
}
