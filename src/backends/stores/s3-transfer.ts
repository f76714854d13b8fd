import { AsyncLocalStorage } from 'node:async_hooks';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream';
import type { StoreEvent } from '../../core/interfaces/store.js';

/**
 * What the S3 store watches while an operation (an upload, a download, a listing page...) runs, and the
 * SDK hooks that feed it: a request handler that counts bytes as they move and a retry strategy that counts
 * and reports retries. The operation's Transfer travels with its requests through AsyncLocalStorage, so
 * the hooks know whose bytes they see without the SDK passing anything along.
 *
 * "Progress" is bytes moving: a 256 KiB slice of a request body taken by the socket, response headers
 * arriving, response body bytes arriving. The stall clock runs only while the operation waits on the
 * store (a request is out, a retry is due, or a reader wants body bytes that have not come); an upload
 * waiting on its source, or a download whose reader is busy, is not stalled.
 */
export const currentTransfer = new AsyncLocalStorage<Transfer>();

export interface TransferLimits {
  /** No progress for this long while waiting on the store: the operation fails. */
  stallMs: number;
}

export class Transfer {
  /** Aborted when the caller's signal aborts or the operation stalls; every request of it carries this. */
  readonly signal: AbortSignal;
  /** Requests sent again after a transient failure. */
  retries = 0;
  /** The last transient failure, for messages ("ECONNRESET"). */
  lastProblem: string | undefined;
  /** Set when the operation stalled: the storeError it fails with. */
  stallError: Error | undefined;

  readonly #ac = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #waiters = new Set<() => boolean>();
  readonly #reportEveryMs: number;
  #requests = 0;
  #backoffUntil = 0;
  /** When the stall clock started: the last progress, or when the operation last began to wait. */
  #last = Date.now();
  #lastProgress = Date.now();
  #reported = 0;
  #closed = false;
  readonly #onCallerAbort: () => void;

  constructor(
    readonly operation: string,
    readonly limits: TransferLimits,
    private readonly emit: (e: StoreEvent) => void,
    private readonly stalled: (t: Transfer, idleMs: number) => Error,
    private readonly caller?: AbortSignal,
  ) {
    this.#onCallerAbort = () => this.#ac.abort(caller?.reason);
    if (caller?.aborted) this.#onCallerAbort();
    else caller?.addEventListener('abort', this.#onCallerAbort, { once: true });
    this.signal = this.#ac.signal;
    // Reports come every quarter of the limit (1 s to 10 s apart); the clock is read a few times as often.
    this.#reportEveryMs = Math.min(10_000, Math.max(1000, limits.stallMs / 4));
    this.#timer = setInterval(() => this.#tick(), Math.min(1000, Math.max(100, limits.stallMs / 8)));
    this.#timer.unref();
  }

  /** True when the caller's own signal aborted (not a stall). */
  get callerAborted(): boolean {
    return this.caller?.aborted === true;
  }

  /** Bytes moved. */
  progress(): void {
    const now = Date.now();
    if (this.#reported > 0) this.emit({ type: 'resumed', operation: this.operation, stalledMs: now - this.#lastProgress });
    this.#reported = 0;
    this.#last = now;
    this.#lastProgress = now;
  }

  requestStarted(): void {
    if (!this.#waiting()) this.#last = Date.now();
    this.#requests++;
  }

  requestEnded(): void {
    this.#requests = Math.max(0, this.#requests - 1);
  }

  /** While `waiting()` is true the operation waits on the store (a reader wants bytes that have not come). */
  addWaiter(waiting: () => boolean): () => void {
    this.#waiters.add(waiting);
    return () => this.#waiters.delete(waiting);
  }

  /** A request failed transiently and goes again after `delayMs`. */
  retrying(e: { attempt: number; maxAttempts: number; reason: string; delayMs: number }): void {
    if (!this.#waiting()) this.#last = Date.now();
    this.retries++;
    this.lastProblem = e.reason;
    this.#backoffUntil = Date.now() + e.delayMs + 50;
    this.emit({ type: 'retry', operation: this.operation, ...e });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.caller?.removeEventListener('abort', this.#onCallerAbort);
  }

  #waiting(): boolean {
    if (this.#requests > 0 || Date.now() < this.#backoffUntil) return true;
    for (const w of this.#waiters) if (w()) return true;
    return false;
  }

  #tick(): void {
    if (this.#closed || this.#ac.signal.aborted) return;
    const now = Date.now();
    if (!this.#waiting()) {
      // Idle by choice (waiting on the source, or on a busy reader): the stall clock does not run.
      this.#reported = 0;
      this.#last = now;
      return;
    }
    const idle = now - this.#last;
    if (idle >= this.limits.stallMs) {
      this.stallError = this.stalled(this, idle);
      this.#ac.abort(this.stallError);
      return;
    }
    const due = Math.floor(idle / this.#reportEveryMs) * this.#reportEveryMs;
    if (due > 0 && due > this.#reported) {
      this.#reported = due;
      this.emit({ type: 'stalled', operation: this.operation, idleMs: due, limitMs: this.limits.stallMs });
    }
  }
}

/**
 * Request bodies go to the socket in slices of this size. Each slice is one socket write and one progress
 * mark: 256 KiB rather than 64 KiB cut the CPU of a 200 MB upload by a fifth (0.69 -> 0.55 CPU-s, bench/s3-put.ts
 * --mb 200) with 1 MiB no better, and still marks progress often enough for a link of 5 KB/s under the
 * default 60 s stallTimeout.
 */
const SLICE = 256 * 1024;

/** A request body handed to the socket in SLICE-sized slices, each one counted as progress when taken. */
function slicedBody(data: Uint8Array, onSlice: () => void): Readable {
  let offset = 0;
  return new Readable({
    highWaterMark: SLICE,
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      const end = Math.min(offset + SLICE, data.length);
      const slice = Buffer.from(data.buffer, data.byteOffset + offset, end - offset);
      offset = end;
      onSlice();
      this.push(slice);
    },
  });
}

/** Counts response body bytes as progress, and tells the Transfer when its reader waits for more. */
function watchedBody(body: Readable, t: Transfer): Readable {
  const tap = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      t.progress();
      done(null, chunk);
    },
  });
  const remove = t.addWaiter(() => !tap.destroyed && !tap.writableFinished && tap.readableLength === 0 && tap.writableLength === 0);
  tap.once('close', remove);
  tap.once('end', remove);
  pipeline(body, tap, () => remove());
  return tap;
}

/** The parts of the SDK's HttpHandler interface the client uses (the types live in an SDK-internal package). */
interface SdkHttpHandler {
  handle(request: SdkRequest, options?: { abortSignal?: AbortSignal; requestTimeout?: number }): Promise<{ response: { statusCode: number; body?: unknown } }>;
  updateHttpClientConfig?(key: never, value: never): void;
  httpHandlerConfigs?(): unknown;
  destroy?(): void;
  metadata?: unknown;
}

interface SdkRequest {
  body?: unknown;
  [k: string]: unknown;
}

/**
 * Wraps the client's NodeHttpHandler: inside an operation, request bodies go out in counted slices and
 * response bodies are counted as they arrive. The request object the SDK retries with is never changed
 * (a slice stream is made per attempt, from the buffered body), so a retried request sends its body again.
 */
export function watchHandler(inner: SdkHttpHandler): SdkHttpHandler {
  return {
    metadata: inner.metadata,
    updateHttpClientConfig: inner.updateHttpClientConfig?.bind(inner),
    httpHandlerConfigs: inner.httpHandlerConfigs?.bind(inner),
    destroy: inner.destroy?.bind(inner),
    async handle(request, options) {
      const t = currentTransfer.getStore();
      if (!t) return inner.handle(request, options);
      let req = request;
      if (request.body instanceof Uint8Array && request.body.length > SLICE) {
        req = Object.assign(Object.create(Object.getPrototypeOf(request) as object) as SdkRequest, request, {
          body: slicedBody(request.body, () => t.progress()),
        });
      }
      t.requestStarted();
      try {
        const out = await inner.handle(req, options);
        t.progress();
        if (out.response.body instanceof Readable) out.response.body = watchedBody(out.response.body, t);
        return out;
      } finally {
        t.requestEnded();
      }
    },
  };
}

interface RetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}

interface RetryErrorInfo {
  error?: unknown;
  errorType: 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR';
  retryAfterHint?: Date;
}

const token = (count: number, delay: number): RetryToken => ({ getRetryCount: () => count, getRetryDelay: () => delay });

/**
 * The SDK's retry strategy (RetryStrategyV2): transient failures (resets, timeouts, 500/502/503/504) and
 * throttling are retried up to maxAttempts with exponential backoff and jitter (0.25 s doubling to 20 s;
 * throttling from 1 s; a Retry-After hint is honoured up to 20 s). Every retry is counted on the
 * operation's Transfer and reported. No retry once the operation stalled or its caller aborted.
 */
export class TransferRetryStrategy {
  readonly mode = 'standard';

  constructor(private readonly maxAttempts: number) {}

  async acquireInitialRetryToken(): Promise<RetryToken> {
    return token(0, 0);
  }

  async refreshRetryTokenForRetry(previous: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const t = currentTransfer.getStore();
    const attempts = previous.getRetryCount() + 1;
    const retryable = info.errorType === 'TRANSIENT' || info.errorType === 'THROTTLING';
    if (!retryable || attempts >= this.maxAttempts || t?.signal.aborted) throw new Error('no retry');
    let delay = backoffDelay(attempts, info.errorType === 'THROTTLING');
    if (info.retryAfterHint instanceof Date) delay = Math.round(Math.max(delay, Math.min(20_000, info.retryAfterHint.getTime() - Date.now())));
    t?.retrying({ attempt: attempts + 1, maxAttempts: this.maxAttempts, reason: describeFailure(info.error), delayMs: delay });
    return token(attempts, delay);
  }

  recordSuccess(): void {}
}

/** Wait before the next attempt after `attempts` failed ones: doubling from 0.25 s (throttling: 1 s) to 20 s, half of it random. */
export function backoffDelay(attempts: number, throttling: boolean): number {
  const ceiling = Math.min(20_000, (throttling ? 1000 : 250) * 2 ** (attempts - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

/** A network failure worth another attempt (a body broken mid-way): reset, timeout, premature close. */
export function isTransientNetworkError(err: unknown): boolean {
  for (let e = err as { name?: string; code?: string; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.name === 'AbortError') return false;
    if ((e.code && TRANSIENT_CODES.has(e.code)) || e.name === 'TimeoutError' || e.message === 'aborted') return true;
  }
  return false;
}

/** "ECONNRESET", "HTTP 503 SlowDown", "TimeoutError": what failed, never a secret or a signed URL. */
export function describeFailure(err: unknown): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 400) return `HTTP ${status} ${e?.name ?? ''}`.trim();
  if (e?.code && /^E[A-Z_]+$/.test(e.code)) return e.code;
  if (e?.name === 'TimeoutError') return 'timeout';
  return e?.name ?? 'error';
}
