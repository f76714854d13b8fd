import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { repoRoot } from '../helpers/paths.js';

/**
 * `bash scripts/demo.sh`, one of the README's two commands: the main job end to end (back up, the
 * disaster, restore --plan full, drill) on embedded defaults, in its own folder and ports.
 */

let dir: string;
let pgDir: string;
let ports: number[] = [];
let out = '';
let code: number | null = null;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-demo-'));
  const [redisPort, pgPort] = [await freePort(), await freePort()];
  ports = [redisPort, pgPort];
  // Beside the temp folder, not in it: as root the cluster runs as `postgres`, which cannot enter a 0700 mkdtemp.
  pgDir = path.join(tmpdir(), `tykdr-demo-pg-${process.pid}-${pgPort}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [path.join(repoRoot, 'scripts/demo.sh')], {
      cwd: repoRoot,
      // The suite's global set-up built everything; rebuilding dist/ now would break the CLI runs of other tests.
      env: { ...process.env, TYKDR_DEMO_SKIP_SETUP: '1', TYKDR_DEMO_DIR: dir, TYKDR_DEMO_REDIS_PORT: String(redisPort), TYKDR_DEMO_PG_PORT: String(pgPort), TYKDR_DEMO_PG_DIR: pgDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (c) => {
      code = c;
      resolve();
    });
  });
}, 600_000);

afterAll(async () => {
  await Promise.all([rm(dir, { recursive: true, force: true }), pgDir && rm(pgDir, { recursive: true, force: true })]);
});

describe('scripts/demo.sh', () => {
  it('runs the whole loop and exits 0', () => {
    expect(code, out).toBe(0);
  });

  it('backs up every component, the Dashboard database included', () => {
    expect(out).toMatch(/Snapshot \S+ complete: 3 component\(s\), data [\d.]+ \S+, stored [\d.]+ \S+ \(compressed, encrypted\)/);
    expect(out).toMatch(/^ID\s+AGE\s+STATUS\s+DATA\s+STORED\s+COMPONENTS/m);
  });

  it('simulates the disaster, then restore --plan full brings keys, files and rows back', () => {
    expect(out).toMatch(/Redis holds 0 keys; \S+\/apps is gone\./);
    expect(out).toMatch(/Restore SUCCEEDED: snapshot \S+, plan full/);
    expect(out).toMatch(/Redis holds (\d+) keys again; apps\/ holds 2 API definition\(s\)\./);
    expect(Number(/Redis holds (\d+) keys again/.exec(out)?.[1])).toBeGreaterThanOrEqual(2002);
    expect(out).toContain('tyk_analytics holds 50 APIs again.');
  });

  it('drills into scratch targets and says where the HTML reports are', () => {
    expect(out).toMatch(/DR drill SUCCEEDED: snapshot \S+, plan full/);
    expect(out).toMatch(/pass\s+database-counts: dashboard-db: 2 tables hold exactly the snapshot's 60 rows/);
    const reports = [...out.matchAll(/^ {2}(\S+\/tykdr-reports\/(restore|drill)-\S+\.html)$/gm)].map((m) => m[1]!);
    expect(reports.map((r) => path.basename(r).split('-')[0]).sort()).toEqual(['drill', 'restore']);
    for (const r of reports) expect(existsSync(r), r).toBe(true);
  });

  it('stops the servers it started', async () => {
    expect(existsSync(path.join(pgDir, 'data'))).toBe(true);
    expect(existsSync(path.join(pgDir, 'data', 'postmaster.pid'))).toBe(false);
    for (const port of ports) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(false);
        });
        s.on('error', () => resolve(true));
      });
      expect(refused, `port ${port} still answers`).toBe(true);
    }
  });
});
