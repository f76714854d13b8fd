import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { targetOf } from '../../src/backends/registry.js';
import { parseConfig, type Component } from '../../src/core/config/load.js';
import { TykdrError } from '../../src/core/errors.js';
import type { Backends } from '../../src/core/interfaces/backends.js';
import type { Target } from '../../src/core/interfaces/target.js';
import type { Manifest, ManifestComponent } from '../../src/core/manifest.js';
import type { Plan } from '../../src/core/plan/plan.js';
import { preflightRestore, stagingNeed, type PlanMembers } from '../../src/core/restore/preflight.js';

/** The restore's free-space preflight asks for what staging writes: each target says what that is. */

const MB = 1024 * 1024;
const config = (redisRestore: string) =>
  parseConfig(
    `
store: { kind: local, path: ./backups }
encryption: { recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p] }
components:
  redis: { kind: redis, host: 127.0.0.1, port: 6379, restore: { ${redisRestore} } }
  pg: { kind: postgres, host: 127.0.0.1, database: tyk, username: tyk }
`,
    '/etc/tykdr/tykdr.yaml',
  );

const entry = (kind: string, format: string, stored: number, plain: number) =>
  ({ kind, artifact: { format, compression: 'zstd', stored_bytes: stored, plaintext_bytes: plain } }) as unknown as ManifestComponent;
const manifest = {
  id: '20261207T000000Z-abcd',
  components: { redis: entry('redis', 'rdb', 100 * MB, 700 * MB), pg: entry('postgres', 'custom', 20 * MB, 60 * MB) },
} as unknown as Manifest;

async function members(redisRestore: string): Promise<PlanMembers> {
  const cfg = config(redisRestore);
  const resolved = new Map<string, { component: Component; target: Target }>();
  for (const name of ['redis', 'pg']) {
    const c = cfg.components[name]!;
    resolved.set(name, { component: c, target: (await targetOf(c.kind)) as Target });
  }
  return { byRole: { database: ['pg'], redis: ['redis'], dashboard: [], gateway: [] }, resolved };
}

describe('stagingNeed', () => {
  it('a live restore loaded by replication stages the RDB compressed: its stored bytes, not its plaintext', async () => {
    expect(stagingNeed(['redis'], manifest, await members('mode: live, load: replication'))).toBe(100 * MB);
  });

  it('any other Redis restore stages the plaintext RDB', async () => {
    for (const r of ['mode: live', 'mode: live, load: auto', 'mode: live, load: restore']) {
      expect(stagingNeed(['redis'], manifest, await members(r)), r).toBe(700 * MB);
    }
  });

  it('PostgreSQL (staged compressed, a plaintext file beside it for --jobs or kept tables) counts both, and a plan adds its components up', async () => {
    const m = await members('mode: live, load: replication');
    expect(stagingNeed(['pg'], manifest, m)).toBe(80 * MB);
    expect(stagingNeed(['redis', 'pg'], manifest, m)).toBe(180 * MB);
  });
});

describe('preflightRestore and the staging folder\'s free space', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tykdr-staging-need-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (stagingBytes: number) =>
    preflightRestore({
      plan: { name: 'redis', ordered: [] } as unknown as Plan,
      manifest,
      config: config('mode: live'),
      members: await members('mode: live'),
      backends: {} as Backends,
      allowPartial: false,
      stagingDir: path.join(dir, 'staging'),
      reportDir: path.join(dir, 'reports'),
      stagingBytes,
    });

  it('passes when the folder has room, and refuses (badInput, folder and sizes named, nothing written) when it has not', async () => {
    await expect(run(MB)).resolves.toEqual([]);
    const err = await run(2 ** 60).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('badInput');
    expect((err as TykdrError).message).toMatch(new RegExp(`the staging folder ${path.join(dir, 'staging')} has .+ free; staging this snapshot needs about`));
    expect((err as TykdrError).fix).toMatch(/restore\.stagingDir/);
    // The write probes were removed: the folder is as the restore found it (empty).
    expect(await readdir(path.join(dir, 'staging'))).toEqual([]);
  });
});
