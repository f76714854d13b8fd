import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startUpstream, type Upstream } from '../helpers/gateway-standin.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { waitFor } from '../helpers/wait.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Drills that start a Tyk Gateway binary (drill.gateway.binary). The binary is a stand-in executable with
 * Tyk's command line (`--conf FILE`) that reads tyk.conf and serves keys from Redis as Tyk does
 * (test/helpers/tyk-gateway-standin.mjs).
 */
const STANDIN = path.join(repoRoot, 'test/helpers/tyk-gateway-standin.mjs');
const SECRET = 'drill-gateway-secret-never-in-logs';
const CANARY_NAME = 'apikey-canary0000000000000000000000000';
const CANARY = CANARY_NAME.slice('apikey-'.length);

let prod: RedisServer;
let ws: Workspace;
let root: string;
let production: Upstream;
let goodSnapshot: string;
let noCanarySnapshot: string;

const checksOf = (report: any) => Object.fromEntries(report.steps.flatMap((s: any) => s.checks.map((c: any) => [c.name, c])));

/**
 * Processes whose command line names the folder (the drill gateway and its helper run with their conf in it), or that
 * run in it (a scratch redis-server: it runs in its folder, and replaces its command line with "redis-server ADDR").
 */
async function processesUnder(dir: string, also = ''): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
    const state = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.[0];
    const under = cmd.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`);
    if (under && cmd.includes(also) && state !== 'Z') out.push(Number(pid));
  }
  return out;
}

function config(opts: { binary?: boolean | string; timeout?: string; staging: string }): string {
  return `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${prod.port} }
  config: { kind: files, roots: [${root}] }
gateway:
  url: http://127.0.0.1:1
  timeout: ${opts.timeout ?? '20s'}
  keyProbe: { path: /orders/, key: ${CANARY} }
restore: { reportDir: ./reports, stagingDir: ${opts.staging} }
${opts.binary === false ? '' : `drill:\n  gateway: { binary: ${typeof opts.binary === 'string' ? opts.binary : STANDIN}, startTimeout: 30s }\n`}`;
}

beforeAll(async () => {
  [prod, ws, production] = await Promise.all([startRedis(), makeWorkspace(), startUpstream()]);
  root = await mkdtemp(path.join(tmpdir(), 'tykdr-gwdrill-'));
  await mkdir(path.join(root, 'apps'));
  await mkdir(path.join(root, 'policies'));
  // The production tyk.conf: production Redis, production upstream; the drill must point both elsewhere.
  await writeFile(
    path.join(root, 'tyk.conf'),
    JSON.stringify({ listen_port: 8080, secret: SECRET, hash_keys: false, storage: { type: 'redis', host: '127.0.0.1', port: prod.port }, app_path: 'apps/', policies: { policy_source: 'file', policy_record_name: 'policies/policies.json' } }),
  );
  await writeFile(path.join(root, 'apps', 'orders.json'), JSON.stringify({ api_id: 'api1', name: 'Orders', use_keyless: false, proxy: { listen_path: '/orders/', target_url: production.url, strip_listen_path: true } }));
  await writeFile(path.join(root, 'apps', 'open.json'), JSON.stringify({ api_id: 'api2', name: 'Open', use_keyless: true, proxy: { listen_path: '/open/', target_url: production.url } }));
  await writeFile(path.join(root, 'policies', 'policies.json'), JSON.stringify({ pol1: { rate: 100 }, pol2: { rate: 5 } }));
  await seedTykRedis(prod.port, { sessions: 50 });
  await ws.writeConfig('tykdr.yaml', config({ staging: path.join(ws.dir, 'staging') }));
  const first = await runCli(['backup', '-c', path.join(ws.dir, 'tykdr.yaml'), '--json']);
  expect(first.code, first.stderr).toBe(0);
  goodSnapshot = JSON.parse(first.stdout).id;
  // The same deployment after the canary key was lost: a snapshot that cannot serve it.
  await prod.cli('DEL', CANARY_NAME);
  await new Promise((r) => setTimeout(r, 1100)); // snapshot ids have one-second resolution
  const second = await runCli(['backup', '-c', path.join(ws.dir, 'tykdr.yaml'), '--json']);
  expect(second.code, second.stderr).toBe(0);
  noCanarySnapshot = JSON.parse(second.stdout).id;
});

afterAll(async () => {
  await Promise.all([prod?.stop(), production?.stop(), ws?.cleanup(), root && rm(root, { recursive: true, force: true })]);
});

describe('a drill with drill.gateway.binary', () => {
  it('starts the gateway on the scratch Redis and restored files, proves the canary, and tears it down', async () => {
    const staging = path.join(ws.dir, 'staging');
    const res = await runCli(['drill', '--plan', 'full', '--snapshot', goodSnapshot, '-c', path.join(ws.dir, 'tykdr.yaml'), '--json']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const report = JSON.parse(res.stdout).report;
    const checks = checksOf(report);
    for (const c of ['gateway-ready', 'gateway-hello', 'gateway-key-probe', 'gateway-loaded']) expect(checks[c].status, `${c}: ${checks[c].detail}`).toBe('passed');
    expect(checks['gateway-hello'].detail).toMatch(/with redis checked/);
    expect(checks['gateway-key-probe'].evidence.bogusKeyStatus).toBe(403);
    expect(checks['gateway-loaded'].evidence).toMatchObject({ expectedApis: 2, loadedApis: 2, expectedPolicies: 2, loadedPolicies: 2 });
    expect(checks.upstream.status).toBe('skipped');
    expect(checks.upstream.detail).toMatch(/scratch upstream/);
    expect(report.gateway).toMatchObject({ proven: true, binary: STANDIN, version: 'v5.14.0-standin' });
    expect(report.gateway.summary).toMatch(/^gateway proven: /);
    expect(report.verdict.not_proven.join(' ')).not.toMatch(/gateway not proven/);
    // Service restored is the first gateway check that passed, before all checks were done.
    expect(report.rto.service_restored_seconds).toBeGreaterThan(0);
    expect(report.rto.service_restored_seconds).toBeLessThanOrEqual(report.rto.achievedSeconds);
    const gw = report.steps.find((s: any) => s.id === 'gateway').details.drill_gateway;
    expect(gw.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(JSON.stringify(report)).not.toContain(SECRET);
    expect(JSON.stringify(report)).not.toContain(CANARY);
    // Nothing reached production: the APIs were pointed at the scratch upstream, and no gateway is left.
    expect(production.hits).toBe(0);
    expect(await processesUnder(staging)).toEqual([]);
    const text = await runCli(['drill', '--plan', 'gateway', '--snapshot', goodSnapshot, '-c', path.join(ws.dir, 'tykdr.yaml')]);
    // The gateway plan restores no Redis: the drill says why the gateway is not proven, and fails.
    expect(text.stdout).toMatch(/GATEWAY NOT PROVEN: .*restores no Redis/);
  });

  it('fails the gateway check (exit 7) on a snapshot without the canary key, and keeps a scrubbed gateway log', async () => {
    const cfg = await ws.writeConfig('short.yaml', config({ timeout: '4s', staging: path.join(ws.dir, 'staging-short') }));
    const res = await runCli(['drill', '--plan', 'full', '--snapshot', noCanarySnapshot, '-c', cfg]);
    expect(res.code, res.stdout + res.stderr).toBe(7);
    expect(res.stdout).toMatch(/GATEWAY NOT PROVEN: gateway-key-probe failed: the canary key was refused with 403/);
    const log = /gateway log: (\S+)\)/.exec(res.stdout)?.[1];
    expect(log).toBeDefined();
    const text = await readFile(log!, 'utf8');
    expect(text).toContain('Loaded 2 APIs, 2 policies');
    expect(text).toContain('control secret is [redacted]');
    expect(text).not.toContain(SECRET);
    const json = JSON.parse(await readFile(res.stdout.match(/Report: (\S+)\.html/)![1]! + '.json', 'utf8'));
    expect(json.gateway).toMatchObject({ proven: false, log });
    expect(json.verdict.not_proven[0]).toMatch(/^gateway not proven: gateway-key-probe failed/);
    expect(checksOf(json)['gateway-ready'].status).toBe('passed');
    expect(await processesUnder(path.join(ws.dir, 'staging-short'))).toEqual([]);
  });

  it('without a binary, says "gateway not proven" in the output, the JSON and the HTML report', async () => {
    const cfg = await ws.writeConfig('nobinary.yaml', config({ binary: false, staging: path.join(ws.dir, 'staging-nb') }));
    const res = await runCli(['drill', '--plan', 'full', '--snapshot', goodSnapshot, '-c', cfg]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('GATEWAY NOT PROVEN: drill.gateway.binary is not set');
    expect(res.stdout).toMatch(/NOT PROVEN \(checks skipped\): gateway not proven: /);
    const base = res.stdout.match(/Report: (\S+)\.html/)![1]!;
    const json = JSON.parse(await readFile(`${base}.json`, 'utf8'));
    expect(json.gateway.proven).toBe(false);
    expect(json.verdict.not_proven[0]).toMatch(/^gateway not proven: drill\.gateway\.binary is not set/);
    expect(await readFile(`${base}.html`, 'utf8')).toContain('gateway not proven: drill.gateway.binary is not set');
    expect(await readFile(`${base}.md`, 'utf8')).toContain('gateway not proven');
  });

  it('a gateway that exits at start fails the drill (exit 7) quoting its scrubbed log; a missing binary is exit 2', async () => {
    const crashing = path.join(ws.dir, 'crashing-tyk');
    // Prints the secret it was given (tykdr must scrub it) and gives up, as a gateway with a bad config would.
    await writeFile(crashing, `#!/bin/sh\necho "level=fatal msg=\\"cannot start: secret $(grep -o '"secret": *"[^"]*"' "$2")\\""\nexit 3\n`, { mode: 0o755 });
    const cfg = await ws.writeConfig('crash.yaml', config({ binary: crashing, staging: path.join(ws.dir, 'staging-crash') }));
    const res = await runCli(['drill', '--plan', 'full', '--snapshot', goodSnapshot, '-c', cfg]);
    expect(res.code, res.stdout + res.stderr).toBe(7);
    expect(res.stdout).toMatch(/FAILED gateway: the drill gateway exited with code 3 with the snapshot's tyk.conf: "level=fatal msg=.cannot start: secret .*\[redacted\]/);
    expect(res.stdout).toContain('GATEWAY NOT PROVEN');
    expect(res.stdout + res.stderr).not.toContain(SECRET);
    const log = /gateway log: (\S+)\)/.exec(res.stdout)?.[1];
    expect(await readFile(log!, 'utf8')).toContain('cannot start: secret "secret": "[redacted]"');

    const missing = await ws.writeConfig('missing.yaml', config({ binary: path.join(ws.dir, 'no-such-tyk'), staging: path.join(ws.dir, 'staging-missing') }));
    const gone = await runCli(['drill', '--plan', 'full', '--snapshot', goodSnapshot, '-c', missing]);
    expect(gone.code, gone.stdout + gone.stderr).toBe(2);
    expect(gone.stdout).toMatch(/cannot start the drill gateway ".*no-such-tyk" \(ENOENT\)/);
  });

  it('a kill -9 of the drill leaves no gateway process running', async () => {
    const staging = path.join(ws.dir, 'staging-kill');
    const cfg = await ws.writeConfig('kill.yaml', config({ timeout: '120s', staging }));
    // The canary is missing, so the key probe polls for two minutes: the drill is killed meanwhile.
    const drill = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'drill', '--plan', 'full', '--snapshot', noCanarySnapshot, '-c', cfg], { stdio: 'ignore' });
    const exited = new Promise((r) => drill.once('exit', r));
    try {
      // The gateway and the helper it started (its process group) both name their conf in the staging folder.
      const pids = await waitFor(async () => {
        const gateway = await processesUnder(staging, 'tyk-gateway-standin.mjs');
        const helper = await processesUnder(staging, 'tyk-standin-helper');
        return gateway.length === 1 && helper.length === 1 ? [...gateway, ...helper] : null;
      }, { timeoutMs: 90_000, what: 'the drill gateway and its helper to run', intervalMs: 200 });
      // The scratch redis-server the gateway runs on is found too (by its working folder).
      const comms = await Promise.all((await processesUnder(staging)).map((p) => readFile(`/proc/${p}/comm`, 'utf8').catch(() => '')));
      expect(comms.map((c) => c.trim())).toContain('redis-server');
      drill.kill('SIGKILL');
      await exited;
      await waitFor(async () => (await processesUnder(staging)).length === 0, {
        timeoutMs: 20_000,
        what: 'the drill gateway and the scratch redis-server to die with tykdr',
        detail: async () => `still running: ${(await processesUnder(staging)).join(', ')} (were ${pids.join(', ')})`,
      });
    } finally {
      if (drill.exitCode === null && drill.signalCode === null) drill.kill('SIGKILL');
    }
  });
});
