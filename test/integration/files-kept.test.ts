import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * "A restore never destroys what it did not back up", config files: a restore writes the snapshot's files, renames a
 * differing file it overwrites aside first, and deletes nothing (files the snapshot does not have stay).
 */

let ws: Workspace;
let root: string;

beforeAll(async () => {
  ws = await makeWorkspace();
  root = path.join(ws.dir, 'tyk-gateway');
  await mkdir(path.join(root, 'apps'), { recursive: true });
  await writeFile(path.join(root, 'tyk.conf'), JSON.stringify({ secret: 'not-a-real-secret', hash_keys: true }));
  await writeFile(path.join(root, 'apps', 'a.json'), '{"api_id":"a","v":1}');
  await writeFile(path.join(root, 'apps', 'b.json'), '{"api_id":"b","v":1}');
});

afterAll(async () => {
  await ws?.cleanup();
});

describe('restore of a files component into its roots', () => {
  it('overwritten files are kept aside, missing ones come back, files not in the snapshot stay', async () => {
    const file = await ws.writeConfig(
      'tykdr.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  gw: { kind: files, roots: [${root}] }
restore: { reportDir: ./reports }
`,
    );
    const backup = await runCli(['backup', '-c', file, '--json']);
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);

    await writeFile(path.join(root, 'apps', 'a.json'), '{"api_id":"a","v":2}');
    await rm(path.join(root, 'apps', 'b.json'));
    await writeFile(path.join(root, 'apps', 'new.json'), '{"api_id":"new"}');
    await mkdir(path.join(root, 'middleware'));
    await writeFile(path.join(root, 'middleware', 'hook.js'), 'log("after the snapshot")');

    const res = await runCli(['restore', '--plan', 'gateway', '-c', file, '--yes', '--json']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const report = JSON.parse(res.stdout).report;
    const details = report.steps.find((s: any) => s.id === 'gateway').details.gw;
    const aside = path.join(root, 'apps', `a.json.tykdr-aside-${report.id}`);
    expect(details.kept_aside).toEqual([aside]);

    expect(await readFile(path.join(root, 'apps', 'a.json'), 'utf8')).toBe('{"api_id":"a","v":1}');
    expect(await readFile(aside, 'utf8')).toBe('{"api_id":"a","v":2}');
    expect(await readFile(path.join(root, 'apps', 'b.json'), 'utf8')).toBe('{"api_id":"b","v":1}');
    expect(await readFile(path.join(root, 'apps', 'new.json'), 'utf8')).toBe('{"api_id":"new"}');
    expect(await readFile(path.join(root, 'middleware', 'hook.js'), 'utf8')).toBe('log("after the snapshot")');
    expect((await readdir(path.join(root, 'apps'))).sort()).toEqual(['a.json', path.basename(aside), 'b.json', 'new.json'].sort());
  });
});
