import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScratchUpstream {
  url: string;
  /** Requests served (for the report). */
  readonly hits: number;
  stop(): Promise<void>;
}

/**
 * The upstream every API of a drill gateway proxies to (instead of production services): 127.0.0.1 on a
 * free port, answers every request 200 `{"ok":true,"upstream":"tykdr-drill"}` and discards the body.
 */
export async function startScratchUpstream(): Promise<ScratchUpstream> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true,"upstream":"tykdr-drill"}');
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get hits() {
      return hits;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
