import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { useCleanups } from '../helpers/cleanups.js';
import { runCli } from '../helpers/cli.js';
import { startRedis } from '../helpers/redis-server.js';
import { startStream } from '../helpers/stream.js';
import { makeWorkspace } from '../helpers/workspace.js';

const { cleanups } = useCleanups();

describe('prune and point-in-time chains', () => {
  it('keeps the base snapshot of a chain, so a restore to a time inside the chain stays possible', async () => {
    const [source, ws] = await Promise.all([startRedis({ args: ['--repl-diskless-sync-delay', '0'] }), makeWorkspace()]);
    cleanups.push(() => source.stop(), () => ws.cleanup());
    const config = await ws.writeConfig(
      'tykdr.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
retention: { keepLast: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0 }
components:
  redis:
    kind: redis
    port: ${source.port}
`,
    );
    const writer = new Redis({ port: source.port });
    cleanups.push(async () => writer.disconnect());
    await writer.set('k', 'v1');
    const s = startStream(config);
    cleanups.push(async () => s.child.kill('SIGKILL'));
    await s.started;
    const chain = /chain (\S+) started/.exec(s.stderr())![1]!;
    await writer.set('k', 'v2');
    await new Promise((r) => setTimeout(r, 2500));
    const inside = new Date();
    await new Promise((r) => setTimeout(r, 1500));
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);

    // Two ordinary backups later, retention (keepLast 1) lets the base go, unless prune knows it is a base.
    for (let i = 0; i < 2; i++) expect((await runCli(['backup', '--config', config])).code).toBe(0);
    const pruned = await runCli(['prune', '--config', config, '--confirm']);
    expect(pruned.code, pruned.stderr).toBe(0);
    await expect(stat(path.join(ws.storeDir, 'snapshots', chain, 'manifest.json'))).resolves.toBeTruthy();

    const dry = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', inside.toISOString(), '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout + dry.stderr).toContain(chain);
  }, 120_000);
});
