import { execFile } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { runBackup } from '../../src/core/backup.js';
import { loadConfig } from '../../src/core/config/load.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { newSnapshotId } from '../../src/core/layout.js';
import { jsonLogger } from '../../src/daemon/log.js';
import { realJobs } from '../../src/daemon/real-jobs.js';
import { backends } from '../../src/wiring.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import { makeConfigTree } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/*
 * Signed manifests and reports, end to end with the real CLI: a backup host signs, a restore host trusts only
 * its public key, and forgers who can write to the store and encrypt to the public recipient, but do not hold
 * the signing key, are refused by restore, drill and verify.
 */

const exec = promisify(execFile);
const TOOL_VERSION = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version as string;

let ws: Workspace;
let tree: { root: string };
let pub: string;
let otherPub: string;
const cfg: Record<string, string> = {};
const snap: Record<string, string> = {};

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const snapDir = (id: string) => path.join(ws.storeDir, 'snapshots', id);
const json = (s: string) => JSON.parse(s);

async function backup(config: string): Promise<string> {
  const res = await runCli(['backup', '-c', config, '--json']);
  expect(res.code, res.stderr).toBe(0);
  return json(res.stdout).id;
}

beforeAll(async () => {
  [ws, tree] = await Promise.all([makeWorkspace(), makeConfigTree()]);
  const gen = await runCli(['key', 'generate', '--signing', '--output', path.join(ws.dir, 'signing.pem'), '--json']);
  expect(gen.code, gen.stderr).toBe(0);
  pub = json(gen.stdout).public_key;
  const other = await runCli(['key', 'generate', '--signing', '--output', path.join(ws.dir, 'forger.pem')]);
  expect(other.code, other.stderr).toBe(0);
  otherPub = other.stdout.trim();

  const common = `store: { kind: local, path: ./store }
components:
  config: { kind: files, roots: [${tree.root}], exclude: ["**/*.log"] }
`;
  const enc = `encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }\n`;
  // The backup host signs; restores trust its key only.
  cfg.host = await ws.writeConfig('host.yaml', `${common}${enc}signing: { keyFile: ./signing.pem, verifyKeys: ["${pub}"] }\nrestore: { reportDir: ./reports }\n`);
  // A host that checks nothing.
  cfg.open = await ws.writeConfig('open.yaml', `${common}${enc}restore: { reportDir: ./reports-open }\n`);
  // Forgers: they can write to the store and encrypt to the public recipient, but lack the signing key.
  cfg.unsigned = await ws.writeConfig('forger-unsigned.yaml', `${common}encryption: { recipients: [${ws.recipient}] }\n`);
  cfg.otherKey = await ws.writeConfig('forger-key.yaml', `${common}encryption: { recipients: [${ws.recipient}] }\nsigning: { keyFile: ./forger.pem }\n`);

  snap.good = await backup(cfg.host!);
  snap.unsigned = await backup(cfg.unsigned!);
  snap.otherKey = await backup(cfg.otherKey!);
  // A copy of the good snapshot under a new id: the manifest changes by its id, the signature is the original.
  snap.tampered = newSnapshotId(new Date(Date.now() - 60_000));
  await mkdir(snapDir(snap.tampered), { recursive: true });
  for (const n of await readdir(snapDir(snap.good))) {
    if (n !== 'manifest.json') await copyFile(path.join(snapDir(snap.good), n), path.join(snapDir(snap.tampered), n));
  }
  const m = (await readFile(path.join(snapDir(snap.good), 'manifest.json'), 'utf8')).replaceAll(snap.good, snap.tampered);
  await writeFile(path.join(snapDir(snap.tampered), 'manifest.json'), m);
});

afterAll(async () => {
  await Promise.all([ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

describe('tykdr key generate --signing', () => {
  it('writes a 0600 PEM private key, prints one public key line, and never overwrites', async () => {
    const file = path.join(ws.dir, 'signing.pem');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(pub).toMatch(/^tykdr-ed25519:[A-Za-z0-9+/]{43}=$/);
    expect(otherPub).toMatch(/^tykdr-ed25519:[A-Za-z0-9+/]{43}=$/);
    expect(otherPub).not.toBe(pub);
    const before = await readFile(file);
    const again = await runCli(['key', 'generate', '--signing', '--output', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(file);
    expect(again.stderr).toMatch(/Fix: .*never overwritten/);
    expect(await readFile(file)).toEqual(before);
  });
});

describe('signed manifests', () => {
  it('the backup writes manifest.json.sig, a valid Ed25519 signature over the exact manifest bytes', async () => {
    const [manifest, sig] = await Promise.all([
      readFile(path.join(snapDir(snap.good!), 'manifest.json')),
      readFile(path.join(snapDir(snap.good!), 'manifest.json.sig')),
    ]);
    expect(sig).toHaveLength(64);
    const key = createPublicKey(`-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA${pub.slice('tykdr-ed25519:'.length)}\n-----END PUBLIC KEY-----\n`);
    expect(verify(null, manifest, key, sig)).toBe(true);
    await expect(stat(path.join(snapDir(snap.unsigned!), 'manifest.json.sig'))).rejects.toThrow(/ENOENT/);
  });

  it('the signature is written just before the manifest, and the manifest stays last', async () => {
    const config = await loadConfig(cfg.host!, { purpose: 'backup' });
    const puts: string[] = [];
    const inner = new LocalStore(path.join(ws.dir, 'store-order'));
    const store = Object.create(inner) as Store;
    store.put = async (key: string, body: Readable, opts) => {
      puts.push(key);
      return inner.put(key, body, opts);
    };
    const r = await runBackup({ config, backends: { ...backends, openStore: () => store } });
    expect(r.signedBy).toBe(pub);
    expect(puts.slice(-2)).toEqual([`snapshots/${r.id}/manifest.json.sig`, `snapshots/${r.id}/manifest.json`]);
    expect(puts).toHaveLength(3);
  });

  it('a bad signing key fails the backup before anything is written (exit 2)', async () => {
    const bad = await ws.writeConfig('bad-key.yaml', (await readFile(cfg.host!, 'utf8')).replace('./signing.pem', './identity.txt').replace('./store', './store-bad'));
    const res = await runCli(['backup', '-c', bad]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`signing.keyFile: ${path.join(ws.dir, 'identity.txt')} is not a PEM private key`);
    expect(res.stderr).not.toContain('AGE-SECRET-KEY');
    await expect(stat(path.join(ws.dir, 'store-bad'))).rejects.toThrow(/ENOENT/);
  });

  it('snapshots and snapshot show say whether each snapshot is signed, and whether a trusted key signed it', async () => {
    const list = await runCli(['snapshots', '-c', cfg.host!, '--json']);
    expect(list.code, list.stderr).toBe(0);
    const by = Object.fromEntries(json(list.stdout).snapshots.map((s: any) => [s.id, [s.signed, s.signature]]));
    expect(by[snap.good!]).toEqual([true, 'verified']);
    expect(by[snap.unsigned!]).toEqual([false, 'unsigned']);
    expect(by[snap.otherKey!]).toEqual([true, 'bad']);
    expect(by[snap.tampered!]).toEqual([true, 'bad']);
    const text = await runCli(['snapshots', '-c', cfg.host!]);
    expect(text.stdout).toMatch(/ID\s+AGE\s+STATUS\s+DATA\s+STORED\s+COMPONENTS\s+SIGNATURE/);
    expect(text.stdout).toMatch(new RegExp(`${snap.unsigned}.*UNSIGNED`));
    expect(text.stdout).toMatch(new RegExp(`${snap.otherKey}.*BAD`));
    const open = await runCli(['snapshots', '-c', cfg.open!]);
    expect(open.stdout).toMatch(new RegExp(`${snap.good}.*signed \\(not checked\\)`));
    expect(open.stdout).toMatch(new RegExp(`${snap.unsigned}.*unsigned \\(not checked\\)`));

    const show = await runCli(['snapshot', 'show', snap.good!, '-c', cfg.host!]);
    expect(show.stdout).toContain(`signature VERIFIED: manifest signature verified with`);
    expect(show.stdout).toContain(pub);
    const showOpen = await runCli(['snapshot', 'show', snap.unsigned!, '-c', cfg.open!]);
    expect(showOpen.stdout).toContain('signature unsigned: manifest signature not checked');
  });

  describe.each([
    ['unsigned', 'is unsigned'],
    ['otherKey', 'does not verify with any of the 1 key(s) in signing.verifyKeys'],
    ['tampered', 'does not verify with any of the 1 key(s) in signing.verifyKeys'],
  ])('a forged manifest (%s) when signing.verifyKeys is set', (which, why) => {
    const expectRefused = (res: { code: number | null; stdout: string; stderr: string }) => {
      expect(res.code, res.stdout + res.stderr).toBe(5);
      const err = json(res.stdout).error;
      expect(err.kind).toBe('integrityError');
      expect(err.message).toContain(`snapshot ${snap[which]} is refused`);
      expect(err.message).toContain(why);
      expect(err.fix).toContain('signing.verifyKeys');
    };

    it('is refused by restore, before anything is restored or reported', async () => {
      const out = path.join(ws.dir, `out-${which}`);
      expectRefused(await runCli(['restore', '--plan', 'gateway', '--snapshot', snap[which]!, '--to', out, '--yes', '-c', cfg.host!, '--json']));
      await expect(stat(out)).rejects.toThrow(/ENOENT/);
      await expect(stat(path.join(ws.storeDir, 'reports', snap[which]!))).rejects.toThrow(/ENOENT/);
      // A dry run refuses it too.
      expectRefused(await runCli(['restore', '--plan', 'gateway', '--snapshot', snap[which]!, '--dry-run', '-c', cfg.host!, '--json']));
    });

    it('is refused by drill', async () => {
      expectRefused(await runCli(['drill', '--plan', 'gateway', '--snapshot', snap[which]!, '-c', cfg.host!, '--json']));
      await expect(stat(path.join(ws.storeDir, 'reports', snap[which]!))).rejects.toThrow(/ENOENT/);
    });

    it('is refused by verify, naming it; verify --all refuses it and still checks the others', async () => {
      expectRefused(await runCli(['verify', snap[which]!, '-c', cfg.host!, '--json']));
      const all = await runCli(['verify', '--all', '-c', cfg.host!, '--json']);
      expect(all.code).toBe(5);
      const out = json(all.stdout);
      expect(out.refused.map((r: any) => r.id)).toContain(snap[which]);
      expect(out.objects.map((o: any) => o.snapshot)).not.toContain(snap[which]);
      expect(out.objects.filter((o: any) => o.snapshot === snap.good).every((o: any) => o.status === 'ok')).toBe(true);
      expect(out.snapshots.find((s: any) => s.id === snap.good).signature.status).toBe('verified');
    });
  });

  it('without signing.verifyKeys nothing is refused, and restore, drill and verify say "manifest signature not checked"', async () => {
    const restore = await runCli(['restore', '--plan', 'gateway', '--snapshot', snap.unsigned!, '--to', path.join(ws.dir, 'out-open'), '--yes', '-c', cfg.open!]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toContain('Manifest: manifest signature not checked (no signing.verifyKeys configured); the snapshot is unsigned');
    const drill = await runCli(['drill', '--plan', 'gateway', '--snapshot', snap.good!, '-c', cfg.open!, '--json']);
    expect(drill.code, drill.stderr).toBe(0);
    const report = json(drill.stdout).report;
    expect(report.evidence.manifest_signature).toMatchObject({ status: 'not-checked', key_fingerprint: null });
    expect(report.evidence.manifest_signature.detail).toContain('manifest signature not checked');
    expect(report.evidence.report_signing_key).toBeNull();
    expect(json(drill.stdout).report_files.signature).toBeUndefined();
    const md = await readFile(json(drill.stdout).report_files.markdown, 'utf8');
    expect(md).toContain('NOT-CHECKED: manifest signature not checked');
    const verifyRes = await runCli(['verify', snap.good!, '-c', cfg.open!]);
    expect(verifyRes.code, verifyRes.stderr).toBe(0);
    expect(verifyRes.stdout).toContain('manifest signature not checked for 1 snapshot(s): no signing.verifyKeys configured');
    const dry = await runCli(['restore', '--plan', 'gateway', '--snapshot', snap.good!, '--dry-run', '-c', cfg.open!]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('Manifest: manifest signature not checked (no signing.verifyKeys configured); the snapshot has a signature');
    const dryTrusted = await runCli(['restore', '--plan', 'gateway', '--snapshot', snap.good!, '--dry-run', '-c', cfg.host!, '--json']);
    expect(json(dryTrusted.stdout).manifest_signature).toContain(`manifest signature verified with`);
  });
});

describe('restore and drill reports: evidence and signatures', () => {
  let restore: any;
  let drill: any;

  beforeAll(async () => {
    const r = await runCli(['restore', '--plan', 'gateway', '--snapshot', snap.good!, '--to', path.join(ws.dir, 'out-good'), '--yes', '--ticket', 'CHG-4711', '-c', cfg.host!, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    restore = json(r.stdout);
    const d = await runCli(['drill', '--plan', 'gateway', '--snapshot', snap.good!, '--ticket', 'AUDIT-2026', '-c', cfg.host!, '--json']);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    drill = json(d.stdout);
  });

  it('every report carries the evidence: snapshot, manifest and artifact hashes, recipient fingerprint, plan hash, operator, trigger, ticket, version', async () => {
    const manifestBytes = await readFile(path.join(snapDir(snap.good!), 'manifest.json'));
    const manifest = JSON.parse(manifestBytes.toString('utf8'));
    const planSha = sha256(await readFile(path.join(repoRoot, 'plans/gateway.yaml')));
    for (const [out, ticket] of [[restore, 'CHG-4711'], [drill, 'AUDIT-2026']] as const) {
      const e = out.report.evidence;
      expect(e.snapshot_id).toBe(snap.good);
      expect(e.manifest_sha256).toBe(sha256(manifestBytes));
      expect(e.manifest_signature.status).toBe('verified');
      expect(e.manifest_signature.key_fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
      expect(e.artifacts).toEqual([
        {
          component: 'config',
          name: manifest.components.config.artifact.name,
          sha256: manifest.components.config.artifact.sha256,
          stored_bytes: manifest.components.config.artifact.stored_bytes,
          plaintext_bytes: manifest.components.config.artifact.plaintext_bytes,
        },
      ]);
      expect(e.encryption).toEqual({ scheme: 'age-v1', recipient_fingerprints: [manifest.encryption.recipients[0].fingerprint], passphrase: false });
      expect(e.plan).toEqual({ name: 'gateway', file: path.join(repoRoot, 'plans/gateway.yaml'), version: 1, sha256: planSha });
      expect(e.operator).toBe(`${userInfo().username}@${hostname()}`);
      expect(e.trigger).toBe('manual');
      expect(e.ticket).toBe(ticket);
      expect(e.tool_version).toBe(TOOL_VERSION);
      expect(e.report_signing_key).toBe(pub);
    }
  });

  it('the Markdown and HTML reports show the evidence as a labelled table', async () => {
    const md = await readFile(restore.report_files.markdown, 'utf8');
    expect(md).toContain('## Evidence');
    expect(md).toContain('| Ticket | `CHG-4711` |');
    expect(md).toContain(`| Manifest SHA-256 | \`${restore.report.evidence.manifest_sha256}\` |`);
    const html = await readFile(restore.report_files.html, 'utf8');
    expect(html).toContain('<th scope="row">Operator</th>');
    expect(html).toContain(restore.report.evidence.plan.sha256);
  });

  it('no report, signature or output holds a secret: the identity, the signing key, the recipient itself', async () => {
    const secrets = [
      (await readFile(ws.identityFile, 'utf8')).match(/AGE-SECRET-KEY-1[0-9A-Z]+/)![0],
      (await readFile(path.join(ws.dir, 'signing.pem'), 'utf8')).split('\n')[1]!,
      ws.recipient,
    ];
    const texts = [JSON.stringify(restore), JSON.stringify(drill)];
    for (const dir of [path.join(ws.dir, 'reports'), path.join(ws.storeDir, 'reports', snap.good!)]) {
      for (const n of await readdir(dir)) texts.push(await readFile(path.join(dir, n), 'latin1'));
    }
    for (const t of texts) for (const s of secrets) expect(t).not.toContain(s);
  });

  it('each report JSON is signed locally and next to the snapshot in the store', async () => {
    for (const out of [restore, drill]) {
      const { json: file, signature } = out.report_files;
      expect(signature).toBe(`${file}.sig`);
      const stored = path.join(ws.storeDir, 'reports', snap.good!, path.basename(file));
      expect(await readFile(`${stored}.sig`)).toEqual(await readFile(signature));
      expect(await readFile(stored)).toEqual(await readFile(file));
      expect(out.stored_report).toContain(`reports/${snap.good}/${path.basename(file)}.sig`);
    }
  });

  it('report verify accepts a good report: with --key, and with signing.verifyKeys', async () => {
    const file = restore.report_files.json;
    const withKey = await runCli(['report', 'verify', file, '--key', pub, '--json']);
    expect(withKey.code, withKey.stderr).toBe(0);
    expect(json(withKey.stdout)).toMatchObject({ ok: true, file, key: pub, report: { id: restore.report.id, kind: 'restore', snapshot: snap.good, status: 'succeeded' } });
    const withConfig = await runCli(['report', 'verify', drill.report_files.json, '-c', cfg.host!]);
    expect(withConfig.code, withConfig.stderr).toBe(0);
    expect(withConfig.stdout).toContain(`OK: ${drill.report_files.json} is signed by`);
    // --key may be a file holding the key.
    await writeFile(path.join(ws.dir, 'backup-host.pub'), `${pub}\n`);
    expect((await runCli(['report', 'verify', file, '--key', path.join(ws.dir, 'backup-host.pub')])).code).toBe(0);
  });

  it('report verify refuses a report with one changed byte, or signed by another key: exit 5', async () => {
    const original = await readFile(restore.report_files.json);
    const copy = path.join(ws.dir, 'changed.json');
    const changed = Buffer.from(original);
    const at = changed.indexOf('"succeeded"') + 2;
    changed[at] = 'S'.charCodeAt(0);
    await writeFile(copy, changed);
    await copyFile(restore.report_files.signature, `${copy}.sig`);
    const res = await runCli(['report', 'verify', copy, '--key', pub, '--json']);
    expect(res.code).toBe(5);
    expect(json(res.stdout).error).toMatchObject({ kind: 'integrityError', exit_code: 5 });
    expect(json(res.stdout).error.message).toContain(`signature of report ${copy} does not verify`);
    const wrongKey = await runCli(['report', 'verify', restore.report_files.json, '--key', otherPub]);
    expect(wrongKey.code).toBe(5);
    expect(wrongKey.stderr).toContain('another key signed it');
  });

  it('report verify: a missing report, an unsigned one, a rendering, or no key is bad input: exit 2', async () => {
    const missing = await runCli(['report', 'verify', path.join(ws.dir, 'nope.json'), '--key', pub]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${path.join(ws.dir, 'nope.json')} does not exist`);
    const unsigned = path.join(ws.dir, 'unsigned.json');
    await copyFile(restore.report_files.json, unsigned);
    const u = await runCli(['report', 'verify', unsigned, '--key', pub]);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain(`report ${unsigned} is unsigned`);
    const md = await runCli(['report', 'verify', restore.report_files.markdown, '--key', pub]);
    expect(md.code).toBe(2);
    expect(md.stderr).toContain('the signature covers the report\'s JSON');
    const noKey = await runCli(['report', 'verify', restore.report_files.json, '-c', cfg.open!]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/Fix: pass --key tykdr-ed25519/);
    const badKey = await runCli(['report', 'verify', restore.report_files.json, '--key', 'tykdr-ed25519:short']);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('tykdr-ed25519:short');
  });

  it('report verify --help has examples, --config, --json and the exit-code table', async () => {
    const res = await runCli(['report', 'verify', '--help']);
    expect(res.code).toBe(0);
    for (const s of ['EXAMPLES', '--config', '--json', '--key', 'EXIT CODES', '5    integrity check failed']) expect(res.stdout).toContain(s);
  });

  it('a drill the daemon runs refuses a forged latest snapshot, and records its schedule as the trigger', async () => {
    const lines: string[] = [];
    const log = jsonLogger({ write: (l) => lines.push(l), level: 'error' });
    // In the shared store the newest snapshot is a forgery: the scheduled drill fails on it, naming it.
    const forged = await realJobs(await loadConfig(cfg.host!), log).drill('components', AbortSignal.timeout(120_000));
    expect(forged.plans).toHaveLength(1);
    expect(forged.plans[0]).toMatchObject({ plan: 'gateway', passed: false });
    expect(forged.plans[0]!.reason).toContain(`snapshot ${snap.otherKey} is refused`);

    const own = await ws.writeConfig('daemon.yaml', (await readFile(cfg.host!, 'utf8')).replace('./store', './store-daemon'));
    await backup(own);
    const out = await realJobs(await loadConfig(own), log).drill('components', AbortSignal.timeout(120_000));
    expect(out.plans.map((p) => [p.plan, p.passed])).toEqual([['gateway', true]]);
    const id = String(out.plans[0]!.details!.report_id);
    const dir = path.join(ws.dir, 'store-daemon', 'reports', out.plans[0]!.snapshot!);
    const stored = JSON.parse(await readFile(path.join(dir, `drill-${id}.json`), 'utf8'));
    expect(stored.evidence.trigger).toBe('schedule drill-components (schedule.drills.components)');
    expect(stored.evidence.ticket).toBeNull();
    expect(stored.evidence.manifest_signature.status).toBe('verified');
    await expect(stat(path.join(dir, `drill-${id}.json.sig`))).resolves.toBeTruthy();
    expect(lines).toEqual([]);
  });

  it('a bad --ticket is bad input naming it, before anything runs', async () => {
    const res = await runCli(['drill', '--plan', 'gateway', '--snapshot', snap.good!, '--ticket', 'a\nb', '-c', cfg.host!]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--ticket "a\\nb" is not a ticket reference');
  });
});

describe('docs/FORMAT.md: checking signatures by hand with openssl', () => {
  const block = (tag: string): string => {
    const doc = readFileSync(path.join(repoRoot, 'docs/FORMAT.md'), 'utf8');
    const found = [...doc.matchAll(new RegExp('```sh ' + tag + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
    expect(found).toHaveLength(1);
    return found[0]!;
  };
  const run = async (tag: string, env: Record<string, string>) => {
    const work = path.join(ws.dir, `work-${tag}-${Object.values(env).join('').length}`);
    await mkdir(work, { recursive: true });
    return exec('bash', ['-euo', 'pipefail', '-c', block(tag)], { env: { ...process.env, SIGNING_KEY: pub, WORK: work, ...env } });
  };

  it('the manifest runbook verifies a real signed snapshot', async () => {
    const { stdout } = await run('runbook-signature', { SNAP: snapDir(snap.good!) });
    expect(stdout).toContain('Signature Verified Successfully');
  });

  it('and fails on a manifest with a changed byte, and on one signed by another key', async () => {
    await expect(run('runbook-signature', { SNAP: snapDir(snap.tampered!) })).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining('Signature Verification Failure') });
    await expect(run('runbook-signature', { SNAP: snapDir(snap.otherKey!) })).rejects.toMatchObject({ code: 1 });
  });

  it('the report runbook verifies a real signed report, and fails on a changed one', async () => {
    const report = path.join(ws.storeDir, 'reports', snap.good!, (await readdir(path.join(ws.storeDir, 'reports', snap.good!))).find((n) => /^restore-.*\.json$/.test(n))!);
    const { stdout } = await run('runbook-report-signature', { REPORT: report });
    expect(stdout).toContain('Signature Verified Successfully');
    const changed = path.join(ws.dir, 'report-changed.json');
    await writeFile(changed, (await readFile(report, 'utf8')).replace('"restore"', '"drill"'));
    await copyFile(`${report}.sig`, `${changed}.sig`);
    await expect(run('runbook-report-signature', { REPORT: changed })).rejects.toMatchObject({ code: 1 });
  });
});
