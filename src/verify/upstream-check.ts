import type { Gateway } from '../core/config/load.js';
import type { UptimeCheck } from '../core/config/schema.js';
import type { CheckResult } from '../core/restore/types.js';
import { checkResult } from '../core/checks/result.js';
import { formatMs } from '../core/util/text.js';
import { safeUrl } from './url.js';
import { sleep, throwIfAborted } from '../core/util/abort.js';
import { HttpFailure, httpRequest } from './http-request.js';

/** Long-form checks fail after this, as Tyk documents ("the long form will fail with a 500ms timeout"). */
export const LONG_FORM_TIMEOUT_MS = 500;
/**
 * Tyk documents no timeout for the short form. tykdr still stops a short-form request after 30 s, so a
 * hung upstream cannot hang a restore; a check that needs longer than that is reported as down.
 */
export const SHORT_FORM_SAFETY_CAP_MS = 30_000;
/** Pause between consecutive samples of one check (Tyk waits uptime_tests.config.time_wait; a restore cannot). */
export const SAMPLE_INTERVAL_MS = 250;

export interface UpstreamEvidence {
  /** The URL with user-info and credential-like query values removed. */
  url: string;
  method: string;
  form: 'short' | 'long';
  /** Header names sent (values are never recorded). */
  headerNames: string[];
  up: boolean;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  /** Time to the response head of the last attempt. */
  latencyMs: number | null;
  timeoutMs: number;
}

/**
 * `upstream`: runs gateway.uptimeTests.checkList the way Tyk's host checker judges it
 * (gateway/host_checker.go, `CheckHost`): a sample succeeds only on a response with status exactly 200
 * (redirects are followed first); a transport error, a timeout or any other status is a failure.
 * Like Tyk's HostDown, a check is down only after failureTriggerSampleSize consecutive failures, and up on
 * the first success. Checks run in parallel. Resolves with a result; rejects only on abort.
 */
export async function checkUpstreams(gw: Pick<Gateway, 'uptimeTests'>, signal?: AbortSignal): Promise<CheckResult> {
  const started = Date.now();
  const tests = gw.uptimeTests;
  if (tests === undefined) {
    return checkResult('upstream', 'skipped', 'gateway.uptimeTests is not configured, so no upstream was checked', undefined, started);
  }
  const samples = tests.failureTriggerSampleSize ?? 3;
  const results = await Promise.all(tests.checkList.map((c) => runCheck(c, samples, signal)));
  const down = results.filter((r) => !r.up);
  const evidence = { failureTriggerSampleSize: samples, checks: results };
  if (down.length === 0) {
    const detail = `${results.length} upstream check(s) answered 200: ${results.map((r) => `${r.method} ${r.url}`).join(', ')}`;
    return checkResult('upstream', 'passed', detail, evidence, started);
  }
  const why = down.map((r) => `${r.method} ${r.url} ${failureText(r)} (${r.attempts} of ${samples} sample(s))`).join('; ');
  const detail = `${down.length} of ${results.length} upstream check(s) down, failing every sample in a row (Tyk would raise HostDown): ${why}`;
  return checkResult('upstream', 'failed', detail, evidence, started);
}

function failureText(r: UpstreamEvidence): string {
  if (r.lastError !== null) return r.lastError;
  return `answered ${r.lastStatus} (Tyk counts only 200 as up)`;
}

async function runCheck(check: UptimeCheck, samples: number, signal: AbortSignal | undefined): Promise<UpstreamEvidence> {
  const long = 'method' in check;
  const method = long ? (check.method || 'GET').toUpperCase() : 'GET';
  const headers = long ? check.headers ?? {} : {};
  const body = long && check.body ? Buffer.from(check.body, 'base64') : undefined;
  const ev: UpstreamEvidence = {
    url: safeUrl(check.url),
    method,
    form: long ? 'long' : 'short',
    headerNames: Object.keys(headers),
    up: false,
    attempts: 0,
    lastStatus: null,
    lastError: null,
    latencyMs: null,
    timeoutMs: long ? LONG_FORM_TIMEOUT_MS : SHORT_FORM_SAFETY_CAP_MS,
  };
  while (ev.attempts < samples) {
    throwIfAborted(signal);
    if (ev.attempts > 0) await sleep(SAMPLE_INTERVAL_MS, signal);
    ev.attempts++;
    try {
      // Tyk closes the body unread: the timeout covers the response head only.
      const a = await httpRequest(check.url, { method, headers, body, timeoutMs: ev.timeoutMs, signal, maxBodyBytes: 0 });
      ev.lastStatus = a.status;
      ev.lastError = null;
      ev.latencyMs = Math.round(a.latencyMs);
      if (a.status === 200) {
        ev.up = true;
        return ev;
      }
    } catch (err) {
      if (!(err instanceof HttpFailure)) throw err;
      ev.lastStatus = null;
      ev.lastError = err.kind === 'timeout' ? `timed out after ${formatMs(ev.timeoutMs)}` : err.message;
      ev.latencyMs = Math.round(err.latencyMs);
      // A request that cannot be built (bad URL or header) will never succeed: no point sampling again.
      if (err.kind === 'invalid-request') return ev;
    }
  }
  return ev;
}
