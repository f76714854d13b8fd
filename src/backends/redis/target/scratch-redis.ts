import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { watchChild } from '../../../core/util/watchdog.js';
import { badInput, TykdrError } from '../../../core/errors.js';
import { Secret } from '../../../core/secret.js';
import { freePort } from '../../../core/net.js';

export interface ScratchRedis {
  port: number;
  password: Secret;
  stop(): Promise<void>;
}

/**
 * An empty redis-server for a drill to restore into: 127.0.0.1 on a free port, a random password in a
 * 0600 config file (never on the command line), no persistence. Stopped with stop(), even on failure.
 */
export async function startScratchRedis(bin: string, dir: string, signal?: AbortSignal): Promise<ScratchRedis> {
  const port = await freePort();
  const password = randomBytes(24).toString('base64url');
  const conf = path.join(dir, `scratch-${port}.conf`);
  await writeFile(
    conf,
    [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'save ""', 'appendonly no', `requirepass ${password}`, 'databases 16', `logfile ${path.join(dir, `scratch-${port}.log`)}`].join('\n') + '\n',
    { mode: 0o600 },
  );
  const child = spawn(bin, [conf], { stdio: 'ignore' });
  // Dies with tykdr, even through kill -9.
  watchChild(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(badInput(`cannot start the drill's scratch Redis "${bin}" (${(err as NodeJS.ErrnoException).code ?? err})`, 'install redis-server or set drill.redisServer')),
    ),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };
  try {
    await Promise.race([spawnError, waitForPing(port, password, signal)]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, password: new Secret(password), stop };
}

async function waitForPing(port: number, password: string, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    signal?.throwIfAborted();
    const r = new Redis({ port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    r.on('error', () => undefined);
    try {
      await r.connect();
      if ((await r.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      r.disconnect();
    }
    if (Date.now() > deadline) throw new TykdrError('targetError', `the drill's scratch Redis on port ${port} did not start within 15 s`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

