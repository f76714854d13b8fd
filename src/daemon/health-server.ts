import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { badInput } from '../core/errors.js';
import type { Secret } from '../core/secret.js';
import type { Logger } from './log.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';

export interface HealthServerOptions {
  /** "host:port" or "[v6]:port"; port 0 picks a free one. */
  listen: string;
  token?: Secret;
  hello(): { httpStatus: number; body: unknown };
  metrics(): string;
  log: Logger;
}

export interface HealthServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * GET /hello (health, JSON) and GET /metrics (Prometheus text). With a token configured, every request
 * needs `Authorization: Bearer <token>` (compared in constant time), else 401.
 */
export async function startHealthServer(o: HealthServerOptions): Promise<HealthServer> {
  const { host, port } = parseListen(o.listen);
  const expected = o.token === undefined ? undefined : digest(o.token.reveal());
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (expected && !authorized(req.headers.authorization, expected)) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="tykdr"' });
      res.end('{"error":"unauthorized"}\n');
      return;
    }
    if (url.pathname !== '/hello' && url.pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found: try /hello or /metrics"}\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' });
      res.end('{"error":"method not allowed"}\n');
      return;
    }
    try {
      if (url.pathname === '/hello') {
        const { httpStatus, body } = o.hello();
        const text = `${JSON.stringify(body)}\n`;
        res.writeHead(httpStatus, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      } else {
        const text = o.metrics();
        res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      }
    } catch (err) {
      o.log.error('health endpoint failed', { path: url.pathname, error: err });
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":"internal error"}\n');
    }
  };
  const server = createServer(handle);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        badInput(
          `health.listen "${o.listen}": cannot listen (${err.code ?? err.message})`,
          err.code === 'EADDRINUSE' ? 'another process uses that port: pick another health.listen' : 'use host:port, e.g. 127.0.0.1:9187',
          err,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => o.log.error('health server error', { error: err }));
  const addr = server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw badInput(`health.listen "${listen}" is not host:port`, 'write e.g. 127.0.0.1:9187, 0.0.0.0:9187 or [::1]:9187');
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Hashing both sides first makes the comparison constant-time regardless of length. */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  const given = digest(m ? m[1]!.trim() : '');
  return timingSafeEqual(given, expected) && m !== null;
}
