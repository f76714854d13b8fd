import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { abortError } from '../core/util/abort.js';
import { formatMs } from '../core/util/text.js';

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Covers connecting, redirects, the response head and (when read) the body. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Read at most this many bytes of the body (the rest is discarded); 0 reads none. Default 64 KiB. */
  maxBodyBytes?: number;
}

export interface HttpAnswer {
  status: number;
  /** The first `maxBodyBytes` of the body, as UTF-8. */
  body: string;
  /** Time to the final response head. */
  latencyMs: number;
}

export type HttpFailureKind = 'timeout' | 'network' | 'invalid-request';

/** A request that got no HTTP answer. The message is one line and names the cause (never a header value). */
export class HttpFailure extends Error {
  constructor(
    readonly kind: HttpFailureKind,
    message: string,
    readonly latencyMs: number,
  ) {
    super(message);
    this.name = 'HttpFailure';
  }
}

/** Go's http.Client stops after 10 redirects; so do we. */
const MAX_REDIRECTS = 10;

/**
 * One HTTP request the way Go's http.Client (and so Tyk) makes it: node:http rather than fetch, so any
 * port, any method with a body, and URL user-info sent as Basic auth all work. Redirects are followed
 * (301/302/303 turn into GET; Authorization and Cookie are dropped on a cross-host hop). A fresh connection
 * per request, like Tyk's `Connection: close`. Resolves with any HTTP status; rejects with an HttpFailure
 * when there is no answer, or an AbortError when `signal` aborts.
 */
export async function httpRequest(url: string, opts: HttpRequestOptions): Promise<HttpAnswer> {
  if (opts.signal?.aborted) throw abortError(opts.signal);
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, opts.timeoutMs);
  const onAbort = () => ac.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const started = performance.now();
  let gotHead = false;
  try {
    let target = parseTarget(url);
    let method = (opts.method ?? 'GET').toUpperCase();
    let body = opts.body;
    let headers = { ...(opts.headers ?? {}) };
    for (let hop = 0; ; hop++) {
      const res = await send(target, method, headers, body, ac.signal);
      const location = res.headers.location;
      if (location === undefined || ![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || hop >= MAX_REDIRECTS) {
        gotHead = true;
        const latencyMs = performance.now() - started;
        const text = await readCapped(res, opts.maxBodyBytes ?? 64 * 1024);
        return { status: res.statusCode ?? 0, body: text, latencyMs };
      }
      res.resume();
      const next = parseTarget(new URL(location, target.url).toString());
      if (next.url.host !== target.url.host) headers = withoutHeaders(headers, ['authorization', 'cookie']);
      else if (next.auth === undefined && target.auth !== undefined) next.auth = target.auth;
      if (res.statusCode !== 307 && res.statusCode !== 308) {
        if (method !== 'HEAD') method = 'GET';
        body = undefined;
        headers = withoutHeaders(headers, ['content-type', 'content-length']);
      }
      target = next;
    }
  } catch (err) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const elapsed = performance.now() - started;
    if (err instanceof HttpFailure) throw err;
    if (timedOut) {
      const what = gotHead ? 'reading the response body' : 'waiting for a response';
      throw new HttpFailure('timeout', `timed out after ${formatMs(opts.timeoutMs)} ${what}`, elapsed);
    }
    const code = (err as { code?: unknown }).code;
    const invalid = typeof code === 'string' && /^ERR_(INVALID|UNESCAPED|HTTP_INVALID)/.test(code);
    throw new HttpFailure(invalid ? 'invalid-request' : 'network', describeNetworkError(err), elapsed);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

interface Target {
  url: URL;
  /** "user:password" from the URL, sent as Basic auth and never shown. */
  auth?: string;
}

function parseTarget(raw: string): Target {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpFailure('invalid-request', 'not a valid URL', 0);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HttpFailure('invalid-request', `unsupported scheme ${url.protocol} (use http or https)`, 0);
  }
  const auth = url.username || url.password ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined;
  url.username = '';
  url.password = '';
  return auth === undefined ? { url } : { url, auth };
}

function send(target: Target, method: string, headers: Record<string, string>, body: Uint8Array | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const hasAuthHeader = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization');
    const mod = target.url.protocol === 'https:' ? https : http;
    const req = mod.request(target.url, {
      method,
      headers: body === undefined ? headers : { ...withoutHeaders(headers, ['content-length']), 'content-length': String(body.length) },
      auth: hasAuthHeader ? undefined : target.auth,
      agent: false,
      signal,
    });
    req.once('response', resolve);
    req.on('error', reject);
    req.end(body === undefined ? undefined : Buffer.from(body));
  });
}

function withoutHeaders(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k.toLowerCase())));
}

async function readCapped(res: IncomingMessage, max: number): Promise<string> {
  if (max <= 0) {
    res.destroy();
    return '';
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= max) {
      res.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

const KNOWN_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  ECONNABORTED: 'connection aborted',
  HPE_INVALID_CONSTANT: 'the answer is not HTTP',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed TLS certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in the TLS chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate not trusted',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host name',
};

/** "connection refused (ECONNREFUSED)"-style text; socket errors name host and port, never user-info. */
export function describeNetworkError(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && KNOWN_CODES[code]) return `${KNOWN_CODES[code]} (${code})`;
  const msg = err instanceof Error ? err.message : String(err);
  const flat = msg.replace(/\s+/g, ' ').slice(0, 200);
  return typeof code === 'string' && !flat.includes(code) ? `${flat} (${code})` : flat;
}
