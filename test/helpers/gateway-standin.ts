import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';

/**
 * Test-only stand-ins for the parts of a Tyk Gateway that a restore verifies (/ready, /hello, a
 * key-protected API) and for an upstream service. Behaviour follows shared/TYK-NOTES.md and Tyk 5.x source
 * (gateway/health_check.go: readiness 503 body, /hello shape and its 503 on fail; the auth 401/403 messages).
 */

export interface GatewayStandinOptions {
  redisPort: number;
  redisPassword?: string;
  /** Where the protected API proxies to (the listen path is stripped, as strip_listen_path does). */
  upstreamUrl: string;
  /** After (re)start: /hello says bare `pass` and /ready 503, like Tyk's first ~10 s. Default 0. */
  warmupMs?: number;
  /** Listen path of the key-protected API. Default /orders/. */
  protectedPath?: string;
  /** How long a found session is cached in memory, like Tyk's ~10 s session cache. Default 10 s. */
  sessionCacheMs?: number;
}

export interface GatewayStandin {
  url: string;
  port: number;
  /** Simulates a gateway restart: warm-up starts again, cached sessions and Redis connection are dropped. */
  restart(): Promise<void>;
  /** Adds a `dashboard` entry to /hello (a gateway with a Dashboard heartbeat); undefined removes it. */
  setDashboard(status: 'pass' | 'fail' | undefined): void;
  stop(): Promise<void>;
  /** Requests served so far. */
  readonly requests: number;
}

const VERSION = 'v5.14.0-standin';
const REDIS_DOWN = 'storage: Redis is either down or was not configured';

export async function startGatewayStandin(opts: GatewayStandinOptions): Promise<GatewayStandin> {
  const warmupMs = opts.warmupMs ?? 0;
  const listenPath = opts.protectedPath ?? '/orders/';
  const cacheMs = opts.sessionCacheMs ?? 10_000;
  let startedAt = Date.now();
  let sessions = new Map<string, number>();
  let dashboard: 'pass' | 'fail' | undefined;
  let requests = 0;

  const connect = () => {
    const r = new Redis({
      host: '127.0.0.1',
      port: opts.redisPort,
      password: opts.redisPassword,
      db: 0,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 500,
      retryStrategy: () => 100,
    });
    r.on('error', () => undefined);
    r.connect().catch(() => undefined);
    return r;
  };
  let redis = connect();

  const redisUp = async (): Promise<boolean> => {
    try {
      // A connection still being made gets a moment, rather than counting as down.
      const r = redis;
      if (r.status !== 'ready') await withTimeout(new Promise((resolve) => r.once('ready', resolve)), 300);
      return (await withTimeout(r.ping(), 300)) === 'PONG';
    } catch {
      return false;
    }
  };
  const warmingUp = () => Date.now() - startedAt < warmupMs;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/ready') {
      if (warmingUp()) return json(res, 503, { status: 'error', message: 'Gateway is starting' });
      if (!(await redisUp())) return json(res, 503, { status: 'error', message: 'Redis connection not available' });
      return json(res, 200, { status: 'ok', message: 'Gateway is ready' });
    }
    if (path === '/hello') {
      // Tyk answers bare `pass` until its first health refresh.
      if (warmingUp()) return json(res, 200, { status: 'pass', version: VERSION, description: 'Tyk GW' });
      const time = new Date().toISOString();
      const up = await redisUp();
      const details: Record<string, Record<string, string>> = {
        redis: up
          ? { status: 'pass', componentType: 'datastore', time }
          : { status: 'fail', componentType: 'datastore', output: REDIS_DOWN, time },
      };
      if (dashboard !== undefined) {
        details.dashboard =
          dashboard === 'pass'
            ? { status: 'pass', componentType: 'system', time }
            : { status: 'fail', componentType: 'system', output: 'dashboard is down? Heartbeat is failing', time };
      }
      // As Tyk 5.x determineHealthStatus: Redis is critical; a fail answers 503, a warn 200.
      const failed = Object.values(details).filter((d) => d.status === 'fail').length;
      const status = !up || failed === Object.keys(details).length ? 'fail' : failed > 0 ? 'warn' : 'pass';
      return json(res, status === 'fail' ? 503 : 200, { status, version: VERSION, description: 'Tyk GW', details });
    }
    if (path.startsWith(listenPath) || `${path}/` === listenPath) {
      const key = req.headers.authorization;
      if (key === undefined || key === '') return json(res, 401, { error: 'Authorization field missing' });
      if (!(await sessionExists(key))) return json(res, 403, { error: 'Access to this API has been disallowed' });
      return proxy(req, res, path.slice(listenPath.length));
    }
    return json(res, 404, { error: 'Not Found' });
  };

  const sessionExists = async (key: string): Promise<boolean> => {
    const cached = sessions.get(key);
    if (cached !== undefined && cached > Date.now()) return true;
    try {
      const found = (await withTimeout(redis.exists(`apikey-${key}`), 500)) === 1;
      if (found) sessions.set(key, Date.now() + cacheMs);
      return found;
    } catch {
      return false;
    }
  };

  const proxy = async (req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding'].includes(k)) headers[k] = v;
    }
    const query = (req.url ?? '').includes('?') ? `?${(req.url ?? '').split('?')[1]}` : '';
    try {
      const up = await fetch(`${opts.upstreamUrl.replace(/\/+$/, '')}/${rest}${query}`, {
        method: req.method,
        headers,
        body: chunks.length > 0 && req.method !== 'GET' && req.method !== 'HEAD' ? Buffer.concat(chunks) : undefined,
        signal: AbortSignal.timeout(5000),
      });
      const body = Buffer.from(await up.arrayBuffer());
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      json(res, 502, { error: 'There was a problem proxying the request' });
    }
  };

  const server = createServer((req, res) => {
    requests++;
    handle(req, res).catch(() => {
      if (!res.headersSent) json(res, 500, { error: 'stand-in failure' });
      else res.destroy();
    });
  });
  const port = await listen(server);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    setDashboard(status) {
      dashboard = status;
    },
    async restart() {
      redis.disconnect();
      sessions = new Map();
      startedAt = Date.now();
      redis = connect();
    },
    async stop() {
      redis.disconnect();
      await close(server);
    },
  };
}

export type UpstreamMode = boolean | 'hang';

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Upstream {
  url: string;
  /** true: 200; false: 500; 'hang': never answers. */
  setHealthy(mode: UpstreamMode): void;
  /** The next `n` requests answer 500, whatever the mode. */
  failNext(n: number): void;
  readonly hits: number;
  /** Every request received, in order (bodies as UTF-8). */
  readonly received: UpstreamRequest[];
  stop(): Promise<void>;
}

/**
 * A tiny upstream service: 200 `{"ok":true,"path":...}` when healthy. Fixed paths whatever the mode:
 * `/status/NNN` answers NNN, `/redirect-to/PATH` answers 302 to /PATH.
 */
export async function startUpstream(): Promise<Upstream> {
  let mode: UpstreamMode = true;
  let failures = 0;
  const received: UpstreamRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ method: req.method ?? 'GET', path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (failures > 0) {
        failures--;
        return json(res, 500, { ok: false });
      }
      const redirect = /^\/redirect-to(\/.*)$/.exec(path);
      if (redirect) {
        res.writeHead(302, { location: redirect[1] });
        return res.end();
      }
      const fixed = /^\/status\/(\d{3})/.exec(path);
      if (fixed) return json(res, Number(fixed[1]), { ok: fixed[1] === '200' });
      if (mode === 'hang') return; // the socket stays open until stop()
      if (mode === false) return json(res, 500, { ok: false });
      json(res, 200, { ok: true, path });
    });
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    setHealthy(m) {
      mode = m;
    },
    failNext(n) {
      failures = n;
    },
    get hits() {
      return received.length;
    },
    received,
    stop: () => close(server),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
