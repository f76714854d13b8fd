import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_MARKER_KEY } from '../../src/backends/redis/target/restore-marker.js';
import { runCli } from '../helpers/cli.js';
import { eventually, mulberry32, processesUsing, runAndKill, type KillTrigger } from '../helpers/crash.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * kill -9 of `tykdr restore --plan redis` (live mode) at seeded random moments, half timed from the step's
 * first progress line and half from the moment the marker key appears in the target (the first write: the
 * staged RDB is read whole before it, so points timed from the step start mostly land before any write):
 * afterwards the target is untouched, whole (DUMP and expiry of every key), or carries the partial-restore marker; `--resume` makes it equal the snapshot; and no
 * process of the killed run (tykdr, scratch redis-server, tools) and, after the next run, no staged
 * plaintext remains.
 */

const SEED = 20261206;
const KILLS = 10;
/** The progress line the Redis step prints when it starts. */
const MARK = 'restoring redis (redis)';

async function values(port: number): Promise<Map<string, string>> {
  const r = new Redis({ port, lazyConnect: true });
  await r.connect();
  const out = new Map<string, string>();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      // DUMP and the absolute expiry (to the second): value, type and TTL as the snapshot holds them.
      const res = (await r.pipeline(keys.flatMap((k) => [['dump', k], ['pexpiretime', k]])).exec())!;
      keys.forEach((k, i) => {
        const at = Number(res[2 * i + 1]![1]);
        out.set(k, `${(res[2 * i]![1] as Buffer | null)?.toString('hex') ?? ''}/${at < 0 ? at : Math.round(at / 1000)}`);
      });
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return out;
}

const same = (a: Map<string, string>, b: Map<string, string>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

let source: RedisServer;
let target: RedisServer;
let ws: Workspace;
let configFile: string;
let snapshotValues: Map<string, string>;
let staging: string;
/** Polls the target for the marker key (a kill trigger). */
let probe: Redis;

beforeAll(async () => {
  source = await startRedis();
  target = await startRedis();
  ws = await makeWorkspace();
  staging = path.join(ws.dir, 'staging');
  await seedTykRedis(source.port, { sessions: 10_000 });
  // Keys that expire within the test would make "whole" a moving target: drop them.
  const r = new Redis({ port: source.port, lazyConnect: true });
  await r.connect();
  for (const k of await r.keys('*')) {
    const ttl = await r.pttl(k);
    if (ttl >= 0 && ttl < 3_600_000) await r.del(k);
  }
  r.disconnect();
  configFile = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    restore:
      mode: live
      classes: [must, should, quota, ephemeral, analytics, mdcb, other]
      target: { host: 127.0.0.1, port: ${target.port} }
restore: { stagingDir: ${staging}, reportDir: ./reports }
# The test runs longer than the default RPO: objectives are not what it checks.
tiers: { critical: { rto: 1h, rpo: 24h } }
`,
  );
  const b = await runCli(['backup', '--config', configFile], { cwd: ws.dir });
  expect(b.code, b.stderr).toBe(0);
  snapshotValues = await values(source.port);
  probe = new Redis({ port: target.port, lazyConnect: true });
  await probe.connect();
}, 180_000);

afterAll(async () => {
  probe?.disconnect();
  await source?.stop();
  await target?.stop();
  await ws?.cleanup();
});

/** The target holds older values of every key of the snapshot (and one key of its own). */
async function oldState(): Promise<Map<string, string>> {
  const r = new Redis({ port: target.port, lazyConnect: true });
  await r.connect();
  await r.flushall();
  const keys = [...snapshotValues.keys()];
  for (let i = 0; i < keys.length; i += 2000) {
    const p = r.pipeline();
    for (const k of keys.slice(i, i + 2000)) p.set(k, `old-${k}`);
    await p.exec();
  }
  r.disconnect();
  return values(target.port);
}

describe('kill -9 of a live Redis restore', () => {
  it(`leaves the target untouched, whole or marked partial at ${KILLS} seeded random moments, and --resume finishes it`, async () => {
    // How long each trigger's window lasts in an uninterrupted restore: the kill points are spread over it.
    const markerSeen: KillTrigger = { probe: async () => (await probe.exists(RESTORE_MARKER_KEY)) === 1 };
    const triggers: KillTrigger[] = [{ mark: MARK }, markerSeen];
    const windows: number[] = [];
    for (const t of triggers) {
      await oldState();
      const full = await runAndKill(['restore', '--plan', 'redis', '--yes', '--config', configFile], { cwd: ws.dir }, t, 3_600_000);
      expect(full.code, full.stderr).toBe(0);
      expect(full.triggeredAt, full.stderr).not.toBeNull();
      windows.push(full.endedAt - full.triggeredAt!);
      expect(same(await values(target.port), snapshotValues)).toBe(true);
    }

    const random = mulberry32(SEED);
    const seen = { untouched: 0, whole: 0, partial: 0 };
    for (let i = 0; i < KILLS; i++) {
      const old = await oldState();
      const which = i % 2;
      const at = Math.round(random() * windows[which]!);
      const run = await runAndKill(['restore', '--plan', 'redis', '--yes', '--config', configFile], { cwd: ws.dir }, triggers[which]!, at);
      if (!run.killed) {
        expect(run.code, run.stderr).toBe(0); // finished before the kill
      }
      // Nothing of the killed run keeps running: its scratch server and tools die with it.
      await eventually(`no process using ${staging}`, async () => (await processesUsing(staging)).length === 0);

      const now = await values(target.port);
      const marker = now.has(RESTORE_MARKER_KEY);
      const withoutMarker = new Map([...now].filter(([k]) => k !== RESTORE_MARKER_KEY));
      const state = same(withoutMarker, old) && !marker ? 'untouched' : same(withoutMarker, snapshotValues) && !marker ? 'whole' : 'partial';
      seen[state]++;
      if (state === 'partial') {
        // Plainly marked: the marker key names the killed restore, and a dry run says PARTIAL.
        expect(marker, `kill at ${at} ms left a mixed target without the marker`).toBe(true);
        const dry = await runCli(['restore', '--plan', 'redis', '--dry-run', '--config', configFile], { cwd: ws.dir });
        expect(dry.stdout + dry.stderr).toContain('PARTIAL');
      }

      const journals = await readdir(path.join(staging, 'tykdr-journal')).catch(() => [] as string[]);
      if (journals.some((j) => j.endsWith('.json'))) {
        const resumed = await runCli(['restore', '--resume', '--config', configFile], { cwd: ws.dir });
        expect(resumed.code, resumed.stderr).toBe(0);
        expect(resumed.stderr).toContain('resuming: restore');
        expect(same(await values(target.port), snapshotValues), `resume after a kill at ${at} ms did not restore the snapshot`).toBe(true);
        expect((await readdir(path.join(staging, 'tykdr-journal'))).filter((j) => j.endsWith('.json'))).toEqual([]);
      } else {
        expect(state, `kill at ${at} ms changed the target but left no journal to resume`).not.toBe('partial');
        // The next run sweeps what the killed one staged.
        const again = await runCli(['restore', '--plan', 'redis', '--yes', '--config', configFile], { cwd: ws.dir });
        expect(again.code, again.stderr).toBe(0);
      }
      // After the next run: no staged plaintext from any earlier run is left.
      const left = (await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-'));
      expect(left, `staged folders left after a kill at ${at} ms`).toEqual([]);
    }
    // The seeded points are meant to land in different phases; at least one must have hit a live write.
    expect(seen.partial + seen.whole + seen.untouched).toBe(KILLS);
    console.log(`kill -9 outcomes over ${KILLS} seeded points: ${JSON.stringify(seen)}`);
    expect(seen.partial, JSON.stringify(seen)).toBeGreaterThan(0);
  }, 600_000);
});
