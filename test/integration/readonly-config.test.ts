import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * "Read-only commands need read-only settings": snapshots, snapshot show, drills and verify read the store (and verify
 * the keys); a ${VAR} of a component or of the gateway they do not touch may be unset. Backup needs the components.
 */

let ws: Workspace;
let backupConfig: string;
let readonlyConfig: string;
let snapshotId: string;

/** A value that must never appear in any output. */
const PG_SECRET = 'pg-Secret-Value-0451';
/** Unset variables are passed as empty, which tykdr treats as unset, so a variable in the test runner's environment cannot leak in. */
const base = { UNSET_VAR: '', UNSET_MONGO_URI: '', UNSET_GATEWAY_URL: '', PG_PW: PG_SECRET };

beforeAll(async () => {
  ws = await makeWorkspace();
  const root = path.join(ws.dir, 'tyk-gateway');
  await mkdir(root);
  await writeFile(path.join(root, 'tyk.conf'), JSON.stringify({ secret: 'not-a-real-secret' }));
  const common = `store: { kind: local, path: ./store }
encryption:
  recipients: [${ws.recipient}]
  identityFile: \${TEST_IDENTITY}
`;
  backupConfig = await ws.writeConfig('backup.yaml', `${common}components:\n  gw: { kind: files, roots: [${root}] }\n`);
  readonlyConfig = await ws.writeConfig(
    'tykdr.yaml',
    `${common}components:
  gw: { kind: files, roots: [${root}] }
  dashboard-db:
    kind: postgres
    port: 1
    password: \${PG_PW}
  redis:
    kind: redis
    port: 1
    password: \${UNSET_VAR}
  mongo:
    kind: mongo
    uri: \${UNSET_MONGO_URI}
gateway:
  url: \${UNSET_GATEWAY_URL}
  keyProbe:
    path: /orders/
    key: \${UNSET_VAR}
`,
  );
  const env = { ...base, TEST_IDENTITY: ws.identityFile };
  const backup = await runCli(['backup', '-c', backupConfig, '--json'], { env });
  expect(backup.code, backup.stdout + backup.stderr).toBe(0);
  snapshotId = JSON.parse(backup.stdout).id;
  const drill = await runCli(['drill', '--plan', 'gateway', '-c', backupConfig, '--json'], { env });
  expect(drill.code, drill.stdout + drill.stderr).toBe(0);
});

afterAll(async () => {
  await ws?.cleanup();
});

async function cli(args: string[], env: Record<string, string> = {}) {
  const res = await runCli([...args, '-c', readonlyConfig, '--json'], { env: { ...base, TEST_IDENTITY: ws.identityFile, ...env } });
  expect(res.stdout + res.stderr).not.toContain(PG_SECRET);
  return { ...res, json: res.stdout ? JSON.parse(res.stdout) : null };
}

describe('read-only commands with unset ${VARS} in a redis component, a mongo URI and the gateway', () => {
  it('snapshots lists the snapshot', async () => {
    const r = await cli(['snapshots']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.snapshots.map((s: any) => s.id)).toEqual([snapshotId]);
  });

  it('snapshot show prints its manifest', async () => {
    const r = await cli(['snapshot', 'show', 'latest']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.id).toBe(snapshotId);
    expect(Object.keys(r.json.components)).toEqual(['gw']);
  });

  it('drills lists the drill', async () => {
    const r = await cli(['drills']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.drills.map((d: any) => [d.plan, d.snapshot, d.status])).toEqual([['gateway', snapshotId, 'succeeded']]);
  });

  it('verify decrypts every object', async () => {
    const r = await cli(['verify']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, checked: 1, failed: 0 });
  });

  it('verify needs the identity: an unset identityFile variable is an error naming it, unless --identity names the file', async () => {
    const missing = await cli(['verify'], { TEST_IDENTITY: '' });
    expect(missing.code).toBe(2);
    expect(missing.json.error.message).toContain('encryption.identityFile refers to environment variable ${TEST_IDENTITY}, which is not set');
    const given = await cli(['verify', '--identity', ws.identityFile], { TEST_IDENTITY: '' });
    expect(given.code, given.stderr).toBe(0);
    expect(given.json).toMatchObject({ ok: true, checked: 1 });
  });

  it('backup fails before touching anything, naming the variable and never a value', async () => {
    const r = await cli(['backup']);
    expect(r.code).toBe(2);
    expect(r.json.error.message).toContain('components.redis.password refers to environment variable ${UNSET_VAR}, which is not set');
    expect(r.json.error.fix).toContain('export UNSET_VAR=');
    const list = await cli(['snapshots']);
    expect(list.json.snapshots).toHaveLength(1);
  });
});
