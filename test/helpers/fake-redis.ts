import net from 'node:net';
import { freePort } from './net.js';

/**
 * A scripted RESP server for protocol edge cases a real server will not produce on demand:
 * `onCommand` gets each command (as words) and the socket to answer on. A stand-in for the unit
 * layer only; everything else runs against a real redis-server.
 */
export async function fakeRedis(onCommand: (args: string[], socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (d) => {
      pending += d.toString('latin1');
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(pending);
        if (!m) return;
        let at = m[0].length;
        const args: string[] = [];
        for (let i = 0; i < Number(m[1]); i++) {
          const h = /^\$(\d+)\r\n/.exec(pending.slice(at));
          if (!h) return;
          const n = Number(h[1]);
          if (pending.length < at + h[0].length + n + 2) return;
          args.push(pending.slice(at + h[0].length, at + h[0].length + n));
          at += h[0].length + n + 2;
        }
        pending = pending.slice(at);
        onCommand(args, socket);
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
