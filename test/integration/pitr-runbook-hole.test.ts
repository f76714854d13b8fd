import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { encodeArgs } from '../../src/backends/redis/formats/command-feed.js';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { formatIdentityFile, generateIdentity } from '../../src/core/age/index.js';
import { ChainWriter } from '../../src/core/pitr/chain.js';
import { useCleanups } from '../helpers/cleanups.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis } from '../helpers/redis-server.js';

const { cleanups, tempDir } = useCleanups();

describe('docs/FORMAT.md: replaying a chain by hand', () => {
  it('stops before a segment whose record is missing, instead of replaying the later ones across the hole', async () => {
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const dir = await tempDir('tykdr-runbook-');
    const { identity, recipient } = generateIdentity();
    const identityFile = path.join(dir, 'identity.txt');
    await writeFile(identityFile, formatIdentityFile(identity), { mode: 0o600 });
    const store = new LocalStore(path.join(dir, 'store'));
    const chainId = '20261121T093012Z-4f9a1c';
    const chain = await ChainWriter.start(
      { chain: chainId, base_snapshot: chainId, component: 'redis', replid: 'a'.repeat(40), base_offset: 0, base_at: new Date().toISOString() },
      { store, compression: { algorithm: 'zstd', level: 3 }, keys: { recipients: [recipient] } },
    );
    let offset = 1;
    for (const key of ['a', 'b', 'c']) {
      const seg = chain.open(offset, 'a'.repeat(40));
      const cmd = encodeArgs(['SET', key, '1']);
      seg.write(cmd, 1, Date.now());
      await seg.close();
      offset += cmd.length;
    }
    const chainDir = path.join(dir, 'store', 'streams', chainId);
    // Segment 2's record was never written (its upload failed): segment 2 and everything after are unusable.
    await rm(path.join(chainDir, 'seg-00000002.json'));

    const block = [...(await readFile(path.join(repoRoot, 'docs/FORMAT.md'), 'utf8')).matchAll(/```sh pitr-runbook\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(block).toHaveLength(1);
    const work = await tempDir('tykdr-runbook-work-');
    await new Promise<void>((resolve, reject) =>
      execFile(
        'bash',
        ['-euo', 'pipefail', '-c', block[0]!],
        { env: { ...process.env, CHAIN: chainDir, IDENTITY: identityFile, WORK: work, PORT: String(server.port), UNTIL: 'seg-00000003' } },
        (err, _o, e) => (err ? reject(new Error(`${err.message}\n${e}`)) : resolve()),
      ),
    );
    const r = new Redis({ port: server.port });
    try {
      expect(await r.get('a')).toBe('1');
      expect(await r.get('c'), 'segment 3 was replayed across the missing segment 2').toBeNull();
    } finally {
      r.disconnect();
    }
  }, 60_000);
});
