import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * What the proxy does to the connections it accepts from now on:
 * - pass: forwards both ways.
 * - reset: forwards until the connection has carried `afterBytes` (both directions, default 0: its first
 *   byte), then resets it (TCP RST) and its upstream. `times` connections at most (default: all of them):
 *   `times: 1` is "reset once".
 * - stall: forwards until a connection has carried `afterBytes`, then forwards nothing either way for `ms`
 *   (Infinity: never again), then goes on. `times` connections at most (default: all).
 * - blackhole: accepts and reads, never connects upstream, never answers.
 */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'reset'; afterBytes?: number; times?: number }
  | { kind: 'stall'; ms: number; afterBytes?: number; times?: number }
  | { kind: 'blackhole' };

export interface FaultProxy {
  port: number;
  /** http://127.0.0.1:PORT, for store.endpoint. */
  endpoint: string;
  setMode(mode: FaultMode): void;
  /** Stalls every connection open now, for good (a host that stops answering); new ones follow the mode. */
  freeze(): void;
  /**
   * Freezes every open connection (as freeze()) the moment the bytes forwarded from now on pass `bytes`, in the
   * same data event, and blackholes new connections from then on: a host that stops answering mid-transfer,
   * without the race of a test polling the byte count while a short transfer finishes.
   */
  freezeAfter(bytes: number): void;
  /**
   * The same, the moment `test` first returns true for a chunk about to be forwarded (`fromClient`: the
   * direction); that chunk is held. `undefined` disarms it.
   */
  freezeWhen(test: ((chunk: Buffer, fromClient: boolean) => boolean) | undefined): void;
  /**
   * Resets (TCP RST) every connection, from now on, the moment `test` returns true for a chunk about to be forwarded
   * (that chunk is dropped): one request of many failing, every time it is sent. `undefined` disarms it.
   */
  resetWhen(test: ((chunk: Buffer, fromClient: boolean) => boolean) | undefined): void;
  /**
   * Shows `see` each chunk as it arrives on a connection that is not stalled (`fromClient`: the direction), before
   * resetWhen's test and the mode act on it; changes nothing. `undefined` stops it.
   */
  watch(see: ((chunk: Buffer, fromClient: boolean) => void) | undefined): void;
  /** What happened so far: connections accepted, resets sent, stalls started, connections blackholed, bytes forwarded, freezeAfter thresholds reached. */
  readonly stats: { connections: number; resets: number; stalls: number; blackholed: number; bytes: number; freezes: number };
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of `target` that injects the faults above. */
export async function startFaultProxy(target: { host?: string; port: number }, initial: FaultMode = { kind: 'pass' }): Promise<FaultProxy> {
  let mode = initial;
  let used = 0; // connections the current mode's `times` has been spent on
  const stats = { connections: 0, resets: 0, stalls: 0, blackholed: 0, bytes: 0, freezes: 0 };
  const open = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const freezers = new Set<() => void>();
  let freezeAt = Infinity; // stats.bytes past which every connection freezes (freezeAfter)
  let freezeTest: ((chunk: Buffer, fromClient: boolean) => boolean) | undefined;
  let resetTest: ((chunk: Buffer, fromClient: boolean) => boolean) | undefined;
  let watcher: ((chunk: Buffer, fromClient: boolean) => void) | undefined;
  const freezeAll = () => {
    freezeAt = Infinity;
    freezeTest = undefined;
    stats.freezes++;
    mode = { kind: 'blackhole' };
    used = 0;
    for (const f of freezers) f();
  };

  const server: Server = createServer((client) => {
    stats.connections++;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    const m = mode;
    if (m.kind === 'blackhole') {
      stats.blackholed++;
      client.on('data', () => undefined);
      return;
    }
    const upstream = createConnection({ host: target.host ?? '127.0.0.1', port: target.port });
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    // A clean close upstream is passed on after what was already written reaches the client (destroy would
    // drop it: a server that sends its last bytes and closes, as Redis does after an rdb-only SYNC).
    upstream.on('close', (hadError) => (hadError ? client.destroy() : client.end()));

    let carried = 0;
    let armed = m.kind !== 'pass' && used < (m.times ?? Infinity);
    let stalled = false;
    const freeze = () => {
      stalled = true;
      client.pause();
      upstream.pause();
    };
    freezers.add(freeze);
    client.on('close', () => freezers.delete(freeze));
    const queued: Array<[Socket, Buffer]> = [];
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (stalled) {
          queued.push([to, chunk]);
          return;
        }
        watcher?.(chunk, from === client);
        if (resetTest !== undefined && resetTest(chunk, from === client)) {
          stats.resets++;
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        carried += chunk.length;
        stats.bytes += chunk.length;
        if (stats.bytes > freezeAt || (freezeTest !== undefined && freezeTest(chunk, from === client))) {
          freezeAll();
          queued.push([to, chunk]);
          return;
        }
        if (armed && carried > (m.kind === 'pass' || m.kind === 'blackhole' ? 0 : (m.afterBytes ?? 0))) {
          armed = false;
          // Another connection may have spent the last of `times` since this one was accepted.
          if (m.kind === 'pass' || m.kind === 'blackhole' || used >= (m.times ?? Infinity)) {
            to.write(chunk);
            return;
          }
          used++;
          if (m.kind === 'reset') {
            stats.resets++;
            client.resetAndDestroy();
            upstream.destroy();
            return;
          }
          if (m.kind === 'stall') {
            stats.stalls++;
            stalled = true;
            queued.push([to, chunk]);
            // Stop reading both ways, so the peers feel TCP backpressure rather than a fast sink.
            client.pause();
            upstream.pause();
            if (m.ms === Infinity) return;
            const t = setTimeout(() => {
              timers.delete(t);
              stalled = false;
              for (const [dest, c] of queued.splice(0)) if (!dest.destroyed) dest.write(c);
              client.resume();
              upstream.resume();
            }, m.ms);
            timers.add(t);
            return;
          }
        }
        to.write(chunk);
      });
    };
    upstream.on('connect', () => {
      forward(client, upstream);
      forward(upstream, client);
    });
    client.pause();
    upstream.on('connect', () => client.resume());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = addr !== null && typeof addr === 'object' ? addr.port : 0;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    setMode: (m) => {
      mode = m;
      used = 0;
    },
    freeze: () => {
      for (const f of freezers) f();
    },
    freezeAfter: (bytes) => {
      freezeAt = stats.bytes + bytes;
    },
    freezeWhen: (test) => {
      freezeTest = test;
    },
    resetWhen: (test) => {
      resetTest = test;
    },
    watch: (see) => {
      watcher = see;
    },
    stats,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
