import type { Gateway } from '../core/config/load.js';
import type { CheckResult } from '../core/restore/types.js';
import { checkResult } from '../core/checks/result.js';
import { formatMs, scrub } from '../core/util/text.js';
import { poll } from '../core/util/poll.js';
import { joinUrl, safeUrl } from './url.js';
import { answerMessage, POLL_INTERVAL_MS, requestTimeout, timeoutOf } from './gateway-checks.js';
import { HttpFailure, httpRequest } from './http-request.js';

interface Count {
  apis?: number;
  policies?: number;
  status?: number;
  message?: string;
  error?: string;
}

/**
 * `gateway-loaded`: a drill gateway must have loaded as many APIs and policies as the snapshot holds.
 * Asks the gateway's control API (GET /tyk/apis and /tyk/policies with header x-tyk-authorization: secret),
 * which answers JSON arrays. Only a drill that started the gateway knows the secret and the expected counts
 * (gateway.drill); elsewhere the check is skipped. Polled until the counts match or gateway.timeout runs out.
 * The secret never appears in the result.
 */
export async function checkGatewayLoaded(gw: Pick<Gateway, 'url' | 'timeout' | 'drill'>, signal?: AbortSignal): Promise<CheckResult> {
  const started = Date.now();
  if (gw.drill === undefined) {
    return checkResult('gateway-loaded', 'skipped', 'drill only: counted by drills that start their own gateway (drill.gateway.binary); a production gateway may also load APIs from the Dashboard', undefined, started);
  }
  const { expect } = gw.drill;
  const secret = gw.drill.controlSecret.reveal();
  const timeoutMs = timeoutOf(gw.timeout);
  const list = async (path: string, left: number): Promise<{ n?: number; status?: number; message?: string; error?: string }> => {
    try {
      const a = await httpRequest(joinUrl(gw.url, path), { headers: { 'x-tyk-authorization': secret }, timeoutMs: requestTimeout(left), signal, maxBodyBytes: 16 << 20 });
      if (a.status !== 200) return { status: a.status, message: scrub(answerMessage(a.body), [secret]) };
      const j: unknown = JSON.parse(a.body);
      return Array.isArray(j) ? { n: j.length, status: 200 } : { status: 200, message: 'not a JSON array' };
    } catch (err) {
      if (err instanceof HttpFailure) return { error: err.message };
      if (err instanceof SyntaxError) return { status: 200, message: 'not JSON (or longer than 16 MiB)' };
      throw err;
    }
  };
  const out = await poll<Count>({ timeoutMs, intervalMs: POLL_INTERVAL_MS, signal }, async (left) => {
    const apis = await list('/tyk/apis', left);
    const policies = await list('/tyk/policies', left);
    const bad = [apis, policies].find((r) => r.n === undefined);
    const state: Count = { apis: apis.n, policies: policies.n, status: bad?.status, message: bad?.message, error: bad?.error };
    return { done: apis.n === expect.apis && policies.n === expect.policies, state };
  });
  const s = out.state;
  const evidence = {
    url: safeUrl(joinUrl(gw.url, '/tyk/apis')),
    expectedApis: expect.apis,
    expectedPolicies: expect.policies,
    loadedApis: s.apis ?? null,
    loadedPolicies: s.policies ?? null,
    attempts: out.attempts,
    timeoutMs,
  };
  if (out.done) {
    return checkResult('gateway-loaded', 'passed', `the gateway loaded ${expect.apis} API(s) and ${expect.policies} polic(ies), as many as the snapshot holds, after ${formatMs(out.elapsedMs)}`, evidence, started);
  }
  let detail: string;
  if (s.error !== undefined) detail = `no answer from the gateway's control API within ${formatMs(timeoutMs)}: ${s.error}`;
  else if (s.status !== undefined && s.status !== 200) detail = `the control API answered ${s.status}${s.message ? ` ("${s.message}")` : ''} to /tyk/apis or /tyk/policies: is the snapshot's tyk.conf secret what the gateway uses?`;
  else if (s.message !== undefined) detail = `the control API did not answer with a list: ${s.message}`;
  else detail = `the gateway loaded ${s.apis} API(s) and ${s.policies} polic(ies); the snapshot holds ${expect.apis} and ${expect.policies} (see the gateway log for definitions it refused)`;
  return checkResult('gateway-loaded', 'failed', detail, evidence, started);
}
