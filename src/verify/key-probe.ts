import { randomBytes } from 'node:crypto';
import type { Gateway } from '../core/config/load.js';
import type { CheckResult } from '../core/restore/types.js';
import { checkResult } from '../core/checks/result.js';
import { formatMs, scrub } from '../core/util/text.js';
import { joinUrl, safeUrl } from './url.js';
import { poll } from '../core/util/poll.js';
import { answerMessage, requestTimeout, timeoutOf } from './gateway-checks.js';
import { HttpFailure, httpRequest } from './http-request.js';

/** Between rounds. The gateway caches sessions ~10 s, so a restored key may take a few rounds to show. */
const ROUND_INTERVAL_MS = 1000;

interface Answer {
  status?: number;
  /** Tyk's `error` text for a refusal (scrubbed of the keys sent). */
  message?: string;
  error?: string;
}

interface Round {
  canary: Answer;
  bogus?: Answer;
  noKey?: Answer;
}

/**
 * `gateway-key-probe`: through an API protected by keys, the canary key (header `Authorization: <key>`)
 * must get keyProbe.expectStatus and a random key 403; no key at all should get 401 (recorded, not judged).
 * Rounds repeat until they pass or gateway.timeout runs out; a random key let through fails at once
 * (the path is not protected, retrying cannot help). The key never appears in the result.
 */
export async function checkGatewayKeyProbe(
  gw: Pick<Gateway, 'url' | 'timeout' | 'keyProbe'>,
  signal?: AbortSignal,
): Promise<CheckResult> {
  const started = Date.now();
  const probe = gw.keyProbe;
  if (probe === undefined) {
    return checkResult('gateway-key-probe', 'skipped', 'gateway.keyProbe is not configured, so no restored key was tried; add a canary key to prove keys survived the restore', undefined, started);
  }
  const url = joinUrl(gw.url, probe.path);
  const shown = safeUrl(url);
  const expect = probe.expectStatus ?? 200;
  const timeoutMs = timeoutOf(gw.timeout);
  const bogusKey = `tykdr-bogus-${randomBytes(16).toString('hex')}`;
  const secrets = [probe.key.reveal(), bogusKey];

  const ask = async (auth: string | undefined, left: number): Promise<Answer> => {
    try {
      const a = await httpRequest(url, {
        headers: auth === undefined ? {} : { Authorization: auth },
        timeoutMs: requestTimeout(left),
        signal,
        maxBodyBytes: 4096,
      });
      // Only refusals are quoted: a proxied answer is the upstream's business.
      return a.status >= 400 ? { status: a.status, message: scrub(answerMessage(a.body), secrets) } : { status: a.status };
    } catch (err) {
      if (err instanceof HttpFailure) return { error: err.message };
      throw err;
    }
  };

  const out = await poll<Round>({ timeoutMs, intervalMs: ROUND_INTERVAL_MS, signal }, async (left) => {
    const round: Round = { canary: await ask(probe.key.reveal(), left) };
    if (round.canary.error !== undefined) return { done: false, state: round };
    round.bogus = await ask(bogusKey, left);
    round.noKey = await ask(undefined, left);
    if (isSuccess(round.bogus.status)) return { done: true, state: round };
    return { done: round.canary.status === expect && round.bogus.status === 403, state: round };
  });

  const { canary, bogus, noKey } = out.state;
  const evidence = {
    url: shown,
    expectStatus: expect,
    attempts: out.attempts,
    canaryStatus: canary.status ?? null,
    bogusKeyStatus: bogus?.status ?? null,
    noKeyStatus: noKey?.status ?? null,
    canaryMessage: canary.message ?? null,
    bogusKeyMessage: bogus?.message ?? null,
    lastError: canary.error ?? bogus?.error ?? null,
    timeToPassMs: null as number | null,
    timeoutMs,
  };
  const said = (a: Answer | undefined) => (a?.message ? ` ("${a.message}")` : '');

  if (isSuccess(bogus?.status)) {
    const detail = `a random key was let through (${bogus?.status}) on ${probe.path}: that API is not protected by keys, so the probe proves nothing; point gateway.keyProbe.path at an API that requires an auth token`;
    return checkResult('gateway-key-probe', 'failed', detail, evidence, started);
  }
  if (out.done) {
    evidence.timeToPassMs = out.elapsedMs;
    const noKeyNote = noKey?.status === 401 ? 'no key 401' : `no key ${noKey?.status ?? 'no answer'} (Tyk says 401)`;
    const detail = `canary key got ${expect} and a random key 403 on ${probe.path} (${noKeyNote}) after ${formatMs(out.elapsedMs)}`;
    return checkResult('gateway-key-probe', 'passed', detail, evidence, started);
  }

  let detail: string;
  const waited = `for ${formatMs(timeoutMs)}`;
  if (canary.error !== undefined) {
    detail = `no answer from ${shown} ${waited}: ${canary.error}; is the gateway running, and is gateway.url right?`;
  } else if (canary.status === 403) {
    detail = `the canary key was refused with 403${said(canary)} ${waited}: it is missing from the restored Redis (apikey-* not restored, expired, or hash_keys/secret differ from the backup); check it with the Gateway API GET /tyk/keys/{key}`;
  } else if (canary.status === 401) {
    detail = `the gateway asked for credentials (401${said(canary)}) although the canary key was sent in the Authorization header: the API at ${probe.path} reads its key elsewhere or uses another auth method`;
  } else if (canary.status === 404) {
    detail = `${probe.path} answered 404 to the canary key: no API listens there; fix gateway.keyProbe.path`;
  } else if (canary.status !== expect) {
    const hint = (canary.status ?? 0) >= 500 ? ': the key passed the gateway but the upstream failed (see the upstream check)' : '';
    detail = `the canary key got ${canary.status}${said(canary)}, expected ${expect}, ${waited}${hint}`;
  } else if (bogus?.error !== undefined) {
    detail = `the canary key got ${expect}, but the random-key request got no answer: ${bogus.error}`;
  } else {
    detail = `the canary key got ${expect}, but a random key got ${bogus?.status}${said(bogus)} instead of 403 on ${probe.path}`;
  }
  return checkResult('gateway-key-probe', 'failed', detail, evidence, started);
}

const isSuccess = (status: number | undefined) => status !== undefined && status >= 200 && status < 300;
