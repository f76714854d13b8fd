import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { JOB_KINDS } from '../../src/daemon/jobs.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { repoRoot, toolsBin } from '../helpers/paths.js';
import { waitFor } from '../helpers/wait.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * deploy/: the Helm chart rendered with `helm template` for several value sets and linted with `helm lint`; the
 * alert rules checked and unit-tested with promtool; every metric the dashboard and the rules name is one a real
 * `tykdr daemon` exports; the Dockerfile linted by hadolint and checked for structure; the systemd units checked
 * by `systemd-analyze verify`. helm, promtool and hadolint come from scripts/tools.sh (the global setup).
 */

const CHART = path.join(repoRoot, 'deploy/helm/tykdr');
const PROM = path.join(repoRoot, 'deploy/prometheus');
const KUBE_VERSION = '1.31.0';

// Rendered Kubernetes objects and parsed YAML are read field by field; their shapes are what the tests check.
type Obj = Record<string, any>;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd ?? repoRoot, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

function tool(name: string): string {
  const p = path.join(toolsBin, name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run scripts/tools.sh (it builds helm and promtool and installs hadolint)`);
  return p;
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'tykdr-deploy-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let valuesCount = 0;
/** `helm template` with these values (a values file on top of the chart's defaults); the objects, or the failure. */
async function template(values: Obj, opts: { release?: string; namespace?: string } = {}): Promise<{ objects: Obj[]; run: Run }> {
  const file = path.join(scratch, `values-${valuesCount++}.yaml`);
  await writeFile(file, stringify(values));
  const r = await run(tool('helm'), ['template', opts.release ?? 'tykdr', CHART, '--namespace', opts.namespace ?? 'tyk', '--kube-version', KUBE_VERSION, '-f', file]);
  const objects = r.code === 0 ? parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter(Boolean) : [];
  return { objects, run: r };
}

async function render(values: Obj, opts: { release?: string; namespace?: string } = {}): Promise<Obj[]> {
  const { objects, run: r } = await template(values, opts);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return objects;
}

const kinds = (objects: Obj[]) => objects.map((o) => o.kind as string).sort();
const one = (objects: Obj[], kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};
const configOf = (objects: Obj[]) => parse(one(objects, 'ConfigMap').data['tykdr.yaml'] as string) as Obj;

/** What every tykdr pod must have: non-root, read-only root, no privilege escalation, secrets by reference. */
function expectHardenedPod(pod: Obj, secretEnv: Array<{ name: string; secretName: string; key: string }>): void {
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
  expect(pod.automountServiceAccountToken).toBe(false);
  const [c] = pod.containers as Obj[];
  expect(c!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  // Writable places are emptyDirs: the work folder (staging, reports) and /tmp.
  const mounts = Object.fromEntries((c!.volumeMounts as Obj[]).map((m) => [m.mountPath, m.name]));
  expect(mounts['/var/lib/tykdr']).toBe('work');
  expect(mounts['/tmp']).toBe('tmp');
  const vols = Object.fromEntries((pod.volumes as Obj[]).map((v) => [v.name, v]));
  expect(vols.work.emptyDir).toBeDefined();
  expect(vols.tmp.emptyDir).toBeDefined();
  const env = Object.fromEntries((c!.env as Obj[]).map((e) => [e.name, e]));
  for (const s of secretEnv) {
    expect(env[s.name], s.name).toEqual({ name: s.name, valueFrom: { secretKeyRef: { name: s.secretName, key: s.key } } });
  }
  expect(env.TYKDR_CONFIG.value).toBe('/etc/tykdr/tykdr.yaml');
  expect(c!.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
  expect(c!.resources.limits.memory).toEqual(expect.any(String));
}

const SECRET_ENV = [
  { name: 'S3_ACCESS_KEY_ID', secretName: 'tykdr-s3', key: 'access-key-id' },
  { name: 'S3_SECRET_ACCESS_KEY', secretName: 'tykdr-s3', key: 'secret-access-key' },
  { name: 'REDIS_PASSWORD', secretName: 'tyk-redis', key: 'redis-password' },
];

describe('Helm chart deploy/helm/tykdr', () => {
  it('passes helm lint in both modes', async () => {
    for (const set of [[], ['--set', 'mode=cronjobs'], ['--set', 'serviceMonitor.enabled=true,prometheusRule.enabled=true']]) {
      const r = await run(tool('helm'), ['lint', CHART, '--strict', '--kube-version', KUBE_VERSION, ...set]);
      expect(r.code, `${set.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    }
  });

  it('cronjobs mode: one CronJob per schedule, Forbid, bounded retries, the job kind as arguments, secrets by reference', async () => {
    const objects = await render({
      mode: 'cronjobs',
      identity: { secretName: 'tykdr-age', key: 'identity.txt' },
      schedules: [
        { name: 'backup-redis', schedule: '*/5 * * * *', job: 'backup', components: ['redis'], maxAge: '10m' },
        { name: 'drill-full', schedule: '0 5 1 * *', job: 'drill', plan: 'full' },
      ],
      cronjob: { backoffLimit: 2 },
    });
    expect(kinds(objects)).toEqual(['ConfigMap', 'CronJob', 'CronJob', 'ServiceAccount']);
    const byName = Object.fromEntries(objects.filter((o) => o.kind === 'CronJob').map((o) => [o.metadata.name, o]));
    expect(Object.keys(byName).sort()).toEqual(['tykdr-backup-redis', 'tykdr-drill-full']);
    const backup = byName['tykdr-backup-redis']!;
    const drill = byName['tykdr-drill-full']!;
    expect(backup.spec.schedule).toBe('*/5 * * * *');
    expect(drill.spec.schedule).toBe('0 5 1 * *');
    for (const cj of [backup, drill]) {
      expect(cj.apiVersion).toBe('batch/v1');
      expect(cj.spec).toMatchObject({ concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 300, timeZone: 'Etc/UTC' });
      expect(cj.spec.jobTemplate.spec.backoffLimit).toBe(2);
      expect(cj.spec.jobTemplate.spec.activeDeadlineSeconds).toBeGreaterThan(0);
      const pod = cj.spec.jobTemplate.spec.template.spec;
      expect(pod.restartPolicy).toBe('Never');
      expectHardenedPod(pod, SECRET_ENV);
      // The identity comes from the Secret, mounted read-only; the config points at it.
      const identity = (pod.volumes as Obj[]).find((v) => v.name === 'identity')!;
      expect(identity.secret).toMatchObject({ secretName: 'tykdr-age', items: [{ key: 'identity.txt', path: 'identity.txt' }] });
      expect((pod.containers[0].volumeMounts as Obj[]).find((m) => m.name === 'identity')).toMatchObject({ mountPath: '/etc/tykdr/identity', readOnly: true });
    }
    expect(backup.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual(['backup', '--json', '--component', 'redis']);
    expect(drill.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual(['drill', '--plan', 'full', '--json']);
    // Drills get the larger memory (a scratch redis-server as large as the dataset).
    expect(drill.spec.jobTemplate.spec.template.spec.containers[0].resources.limits.memory).toBe('2Gi');
    expect(backup.spec.jobTemplate.spec.template.spec.containers[0].resources.limits.memory).toBe('512Mi');
    const config = configOf(objects);
    expect(config.encryption.identityFile).toBe('/etc/tykdr/identity/identity.txt');
    expect(config.restore).toEqual({ stagingDir: '/var/lib/tykdr/staging', reportDir: '/var/lib/tykdr/reports' });
    // ${VARS} stay references for tykdr to resolve from the environment.
    expect(config.components.redis.password).toBe('${REDIS_PASSWORD}');
    expect(config.store.secretAccessKey).toBe('${S3_SECRET_ACCESS_KEY}');
    expect(config.health).toBeUndefined();
  });

  it('daemon mode: two replicas with leader election, probes on the health server, a Service; ServiceMonitor only when asked', async () => {
    const off = await render({});
    expect(kinds(off)).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
    const on = await render({ serviceMonitor: { enabled: true, interval: '15s' } });
    expect(kinds(on)).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    expect(one(on, 'PodDisruptionBudget').spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: one(on, 'Deployment').spec.selector.matchLabels } });
    // A single daemon (--no-leader) gets no disruption budget that would block node drains.
    expect(kinds(await render({ daemon: { replicas: 1, leader: false } }))).toEqual(['ConfigMap', 'Deployment', 'Service', 'ServiceAccount']);
    const dep = one(on, 'Deployment');
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expectHardenedPod(pod, SECRET_ENV);
    const c = pod.containers[0];
    expect(c.args).toEqual(['daemon', '--grace', '60', '--instance-id', '$(POD_NAME)']);
    expect(c.env.find((e: Obj) => e.name === 'POD_NAME').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    expect(c.ports).toEqual([{ name: 'health', containerPort: 9187, protocol: 'TCP' }]);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(c[probe].httpGet, probe).toEqual({ path: '/metrics', port: 'health' });
    // A clean stop fits: --grace, 10 s of clean-up, 10 s of webhook flush.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60 + 20);
    expect(pod.containers[0].resources.limits.memory).toBe('2Gi');
    expect(configOf(on).health).toEqual({ listen: '0.0.0.0:9187' });
    // The config's checksum rolls the pods when tykdr.yaml changes.
    const other = await render({ config: { ...parse(await readFile(path.join(CHART, 'values.yaml'), 'utf8')).config, parallelism: 1 } });
    expect(one(other, 'Deployment').spec.template.metadata.annotations['checksum/config']).not.toBe(dep.spec.template.metadata.annotations['checksum/config']);
    const sm = one(on, 'ServiceMonitor');
    expect(sm.spec.endpoints).toEqual([{ port: 'health', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }]);
    expect(sm.spec.selector.matchLabels).toEqual(one(on, 'Service').spec.selector);
    expect(one(on, 'Service').spec.selector).toEqual(dep.spec.selector.matchLabels);
  });

  it('daemon mode with a health token: the token from a Secret, TCP probes, the ServiceMonitor authenticates', async () => {
    const objects = await render({ serviceMonitor: { enabled: true }, health: { tokenSecret: { name: 'tykdr-health', key: 'token' } }, daemon: { jobs: ['backup', 'prune'] } });
    const c = one(objects, 'Deployment').spec.template.spec.containers[0];
    expect(c.env.find((e: Obj) => e.name === 'TYKDR_HEALTH_TOKEN')).toEqual({ name: 'TYKDR_HEALTH_TOKEN', valueFrom: { secretKeyRef: { name: 'tykdr-health', key: 'token' } } });
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(c[probe].tcpSocket, probe).toEqual({ port: 'health' });
    expect(c.args).toEqual(['daemon', '--grace', '60', '--instance-id', '$(POD_NAME)', '--job', 'backup', '--job', 'prune']);
    expect(configOf(objects).health).toEqual({ listen: '0.0.0.0:9187', token: '${TYKDR_HEALTH_TOKEN}' });
    expect(one(objects, 'ServiceMonitor').spec.endpoints[0].authorization).toEqual({ type: 'Bearer', credentials: { name: 'tykdr-health', key: 'token' } });
  });

  it('NOTES.txt renders in both modes (helm lint and template skip it: it is rendered here as a ConfigMap)', async () => {
    const copy = path.join(scratch, 'chart-notes');
    await cp(CHART, copy, { recursive: true });
    const notes = await readFile(path.join(copy, 'templates/NOTES.txt'), 'utf8');
    const indented = notes.split('\n').map((l) => `    ${l}`).join('\n');
    await writeFile(path.join(copy, 'templates/notes-check.yaml'), `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: notes }\ndata:\n  notes: |\n${indented}\n`);
    const show = async (set: string) => {
      const r = await run(tool('helm'), ['template', 'tykdr', copy, '-n', 'tyk', '--kube-version', KUBE_VERSION, '--set', set, '--show-only', 'templates/notes-check.yaml']);
      expect(r.code, r.stderr).toBe(0);
      return (parse(r.stdout) as Obj).data.notes as string;
    };
    const cron = await show('mode=cronjobs,identity.secretName=tykdr-age');
    expect(cron).toContain('tykdr-backup  "*/15 * * * *"  backup');
    expect(cron).toContain('kubectl -n tyk create job --from=cronjob/tykdr-backup tykdr-manual');
    expect(cron).toContain('secretEnv, tykdr-age:');
    const daemon = await show('health.tokenSecret.name=tykdr-health');
    expect(daemon).toContain('2 daemon(s), one elected leader');
    expect(daemon).toContain('-H "Authorization: Bearer $TOKEN"');
  });

  it('refuses bad values with the value and the fix, and never echoes a secret given inline', async () => {
    const cases: Array<[Obj, string]> = [
      [{ mode: 'cron' }, 'mode "cron": use cronjobs or daemon'],
      [{ secretEnv: [{ name: 'REDIS_PASSWORD', value: 'inline-secret-value', secretName: 'x', key: 'y' }] }, 'secretEnv REDIS_PASSWORD: has a value; give secretName and key of an existing Secret instead'],
      [{ secretEnv: [{ name: 'REDIS_PASSWORD' }] }, 'each needs name, secretName and key'],
      [{ daemon: { leader: false } }, 'set daemon.replicas: 1 or daemon.leader: true'],
      [{ mode: 'cronjobs', schedules: [{ name: 'b', schedule: '* * * * *', job: 'backup' }, { name: 'b', schedule: '* * * * *', job: 'prune' }] }, 'schedules: name "b" is used twice'],
      [{ mode: 'cronjobs', schedules: [{ name: 'x', schedule: '* * * * *', job: 'restore' }] }, 'schedules.x: job "restore": use backup, prune, verify or drill'],
      [{ mode: 'cronjobs', schedules: [{ name: 'x', job: 'prune' }] }, 'schedules.x: schedule (a cron expression) is missing'],
      [{ mode: 'cronjobs', schedules: [{ name: 'x', schedule: '* * * * *', job: 'backup', maxAge: '15 minutes' }] }, 'duration "15 minutes": write a whole number and one of s, m, h, d, w'],
      [{ prometheusRule: { enabled: true, drillOverdue: { default: '1 month' } } }, 'duration "1 month"'],
    ];
    for (const [values, message] of cases) {
      const { run: r } = await template(values);
      expect(r.code, JSON.stringify(values)).not.toBe(0);
      expect(r.stderr, JSON.stringify(values)).toContain(message);
      expect(r.stderr).not.toContain('inline-secret-value');
    }
  });
});

/** The `groups` of the chart's PrometheusRule for these values. */
async function ruleGroups(values: Obj): Promise<unknown> {
  return one(await render({ ...values, prometheusRule: { ...(values.prometheusRule ?? {}), enabled: true } }), 'PrometheusRule').spec.groups;
}

const REQUIRED_ALERTS = ['TykdrRPOBreached', 'TykdrBackupFailing', 'TykdrDrillFailed', 'TykdrDrillOverdue', 'TykdrEvidenceStale'];

describe('alert rules deploy/prometheus', () => {
  const files = {
    // Two test files each: minutes (evaluated every minute, for the alerts with `for`) and days (hourly).
    daemon: { rules: 'rules.yaml', tests: ['tests.yaml', 'tests-days.yaml'], values: { prometheusRule: { selector: 'job="tykdr"' } } },
    cronjobs: { rules: 'rules-cronjobs.yaml', tests: ['tests-cronjobs.yaml', 'tests-cronjobs-days.yaml'], values: { mode: 'cronjobs' } },
  };

  for (const [mode, f] of Object.entries(files)) {
    it(`${mode} mode: the committed ${f.rules} is what the chart renders, has every alert, and promtool checks and unit-tests it`, async () => {
      const committed = parse(await readFile(path.join(PROM, f.rules), 'utf8')) as { groups: Array<{ rules: Obj[] }> };
      expect(committed.groups, `regenerate deploy/prometheus/${f.rules} from the chart (docs/DEPLOY.md)`).toEqual(await ruleGroups(f.values));
      const alerts = new Set(committed.groups.flatMap((g) => g.rules.map((r) => r.alert as string)));
      for (const a of REQUIRED_ALERTS) expect(alerts, a).toContain(a);
      // Every alert of the file is exercised by a unit test.
      const tested = new Set<string>();
      for (const t of f.tests) {
        const tests = parse(await readFile(path.join(PROM, t), 'utf8')) as { rule_files: string[]; tests: Array<{ alert_rule_test: Obj[] }> };
        expect(tests.rule_files).toEqual([f.rules]);
        for (const group of tests.tests) for (const a of group.alert_rule_test) if (a.exp_alerts.length > 0) tested.add(a.alertname as string);
      }
      for (const a of alerts) {
        if (a === 'TykdrPruneFailing' || a === 'TykdrVerifyFailing') continue; // the same expression as TykdrBackupFailing's, on another CronJob
        expect(tested, `${a} has no promtool test that fires it`).toContain(a);
      }
      const check = await run(tool('promtool'), ['check', 'rules', path.join(PROM, f.rules)]);
      expect(check.code, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toMatch(new RegExp(`SUCCESS: ${alerts.size} rules found`));
      const test = await run(tool('promtool'), ['test', 'rules', ...f.tests.map((t) => path.join(PROM, t))]);
      expect(test.code, test.stdout + test.stderr).toBe(0);
      expect(test.stdout.match(/^\s+SUCCESS$/gm)).toHaveLength(f.tests.length);
    });
  }

  it('promtool test rules fails when a rule is broken (the tests can fail)', async () => {
    const dir = path.join(scratch, 'broken-rules');
    await mkdir(dir, { recursive: true });
    const rules = (await readFile(path.join(PROM, 'rules.yaml'), 'utf8')).replace('> max by (component) (tykdr_backup_rpo_seconds', '> 10 * max by (component) (tykdr_backup_rpo_seconds');
    expect(rules).toContain('10 * max by');
    await writeFile(path.join(dir, 'rules.yaml'), rules);
    await copyFile(path.join(PROM, 'tests.yaml'), path.join(dir, 'tests.yaml'));
    const r = await run(tool('promtool'), ['test', 'rules', path.join(dir, 'tests.yaml')]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('TykdrRPOBreached');
  });
});

describe('metric names: what a real daemon exports', () => {
  let ws: Workspace;
  let child: ChildProcess | undefined;
  let families: Map<string, string>;

  beforeAll(async () => {
    ws = await makeWorkspace();
    const root = path.join(ws.dir, 'files');
    await mkdir(root, { recursive: true });
    await writeFile(path.join(root, 'tyk.conf'), '{}\n');
    const port = await freePort();
    const config = await ws.writeConfig(
      'tykdr.yaml',
      `store: { kind: local, path: ${ws.storeDir} }
encryption: { recipients: [${ws.recipient}] }
health: { listen: "127.0.0.1:${port}" }
notifications: { webhooks: [{ url: "http://127.0.0.1:9/hook" }] }
components:
  config: { kind: files, roots: [${root}], include: [tyk.conf] }
`,
    );
    child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'daemon', '--no-leader', '--config', config], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let text = '';
    await waitFor(
      async () => {
        if (child!.exitCode !== null) throw new Error(`the daemon exited (${child!.exitCode}): ${out}`);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
          text = await res.text();
          return res.ok;
        } catch {
          return false;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the daemon to serve /metrics' },
    );
    families = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('close', r));
      child.kill('SIGTERM');
      await exited;
    }
    await ws?.cleanup();
  });

  /** tykdr_* names in PromQL: each name, without the _bucket/_sum/_count of histograms (tykdr has none). */
  const namesIn = (exprs: string[]) => new Set(exprs.flatMap((e) => [...e.matchAll(/\btykdr_[a-z0-9_]+\b/g)].map((m) => m[0])));

  it('exports the families the docs list, including the drill evidence age', () => {
    expect(families.size).toBeGreaterThanOrEqual(20);
    expect(families.get('tykdr_drill_last_pass_timestamp_seconds')).toBe('gauge');
    expect(families.get('tykdr_backup_failures_total')).toBe('counter');
    expect(families.get('tykdr_notifications_dropped_total')).toBe('counter');
  });

  it('the Grafana dashboard queries only metrics the daemon exports, and shows every one of them', async () => {
    const dash = JSON.parse(await readFile(path.join(repoRoot, 'deploy/grafana/tykdr.json'), 'utf8')) as { panels: Obj[]; templating: { list: Obj[] } };
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t: Obj) => t.expr as string));
    expect(exprs.length).toBeGreaterThan(15);
    for (const v of dash.templating.list) if (v.type === 'query') exprs.push(v.definition as string);
    const used = namesIn(exprs);
    for (const n of used) expect(families.has(n), `${n} is queried by the dashboard but not exported by the daemon`).toBe(true);
    for (const n of families.keys()) expect(used.has(n), `${n} is exported but not on the dashboard`).toBe(true);
    // Every panel reads the datasource variable, and ids are unique.
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    for (const p of dash.panels.filter((p) => p.type !== 'row')) expect(p.datasource.uid, p.title).toBe('${datasource}');
  });

  it('the alert rules name only metrics the daemon exports', async () => {
    const rules = parse(await readFile(path.join(PROM, 'rules.yaml'), 'utf8')) as { groups: Array<{ rules: Obj[] }> };
    const used = namesIn(rules.groups.flatMap((g) => g.rules.map((r) => r.expr as string)));
    expect(used.size).toBeGreaterThanOrEqual(8);
    for (const n of used) expect(families.has(n), `${n} is in rules.yaml but not exported by the daemon`).toBe(true);
  });
});

describe('Dockerfile deploy/Dockerfile', () => {
  const file = path.join(repoRoot, 'deploy/Dockerfile');

  it('passes hadolint', async () => {
    const r = await run(tool('hadolint'), ['--no-color', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('');
  });

  it('is multi-stage on node:20-slim, runs tykdr as a non-root uid, has the tools tykdr calls and no secret', async () => {
    const text = await readFile(file, 'utf8');
    // Instructions, with continuation lines joined and comments dropped.
    const lines = text
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const instr = lines.map((l) => ({ op: l.split(/\s+/)[0]!.toUpperCase(), rest: l.slice(l.indexOf(' ') + 1).trim() }));
    const args = Object.fromEntries(instr.filter((i) => i.op === 'ARG' && i.rest.includes('=')).map((i) => [i.rest.slice(0, i.rest.indexOf('=')), i.rest.slice(i.rest.indexOf('=') + 1)]));
    expect(args.NODE_IMAGE).toBe('node:20-slim');
    const froms = instr.map((i, n) => ({ ...i, n })).filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(3);
    expect(froms.map((f) => f.rest)).toEqual(['${NODE_IMAGE} AS build', '${GO_IMAGE} AS mongo-tools', '${NODE_IMAGE}']);
    const final = instr.slice(froms.at(-1)!.n);
    const users = final.filter((i) => i.op === 'USER');
    expect(users).toHaveLength(1);
    const uid = Number(users[0]!.rest.split(':')[0]);
    expect(uid).toBeGreaterThan(0);
    // The user is set after every RUN of the final stage, and the entrypoint is bin/run.js.
    expect(final.findIndex((i) => i.op === 'USER')).toBeGreaterThan(final.map((i) => i.op).lastIndexOf('RUN'));
    expect(final.find((i) => i.op === 'ENTRYPOINT')!.rest).toContain('/app/bin/run.js');
    const install = final.filter((i) => i.op === 'RUN').map((i) => i.rest).join(' ');
    for (const pkg of ['redis-server', 'redis-tools', 'postgresql-client-${PG_MAJOR}']) expect(install, pkg).toContain(pkg);
    expect(final.some((i) => i.op === 'COPY' && i.rest.includes('--from=mongo-tools') && i.rest.includes('mongodump') && i.rest.includes('mongorestore'))).toBe(true);
    // Every COPY from the build context names something the repository has, and the context lets it in
    // (deploy/Dockerfile.dockerignore keeps everything else out: .git, node_modules, .tools).
    const ignore = (await readFile(`${file}.dockerignore`, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    for (const c of instr.filter((i) => i.op === 'COPY' && !i.rest.includes('--from='))) {
      const sources = c.rest.split(/\s+/).slice(0, -1);
      for (const s of sources) {
        expect(existsSync(path.join(repoRoot, s)), `COPY ${s}`).toBe(true);
        expect(ignore, `COPY ${s} is excluded by the .dockerignore`).toContain(`!${s}`);
      }
    }
    // No secret baked in: no ENV or ARG that looks like one, no key or .env file copied.
    for (const i of instr.filter((i) => i.op === 'ENV' || i.op === 'ARG')) expect(i.rest, i.rest).not.toMatch(/PASSWORD|SECRET|TOKEN|ACCESS_KEY|AGE-SECRET-KEY/i);
    expect(text).not.toMatch(/AGE-SECRET-KEY-1|BEGIN [A-Z ]*PRIVATE KEY|\.env\b|identity\.txt/);
    // mongo-tools is the version and hash scripts/tools.sh pins.
    const tools = await readFile(path.join(repoRoot, 'scripts/tools.sh'), 'utf8');
    expect(tools).toContain(`MONGO_TOOLS_VERSION=${args.MONGO_TOOLS_VERSION}`);
    expect(tools).toContain(`MONGO_TOOLS_HASH=${args.MONGO_TOOLS_HASH}`);
  });
});

describe('the commands the chart and the units run', () => {
  it('are ones the CLI accepts: every argument parses, and the config comes from TYKDR_CONFIG as the chart sets it', async () => {
    const missing = path.join(scratch, 'no-such-dir', 'tykdr.yaml');
    const cron = await render({
      mode: 'cronjobs',
      schedules: [
        { name: 'b', schedule: '* * * * *', job: 'backup', components: ['redis', 'config'] },
        { name: 'p', schedule: '* * * * *', job: 'prune' },
        { name: 'v', schedule: '* * * * *', job: 'verify', samplePercent: 5 },
        { name: 'd', schedule: '* * * * *', job: 'drill', plan: 'redis' },
      ],
    });
    const daemon = await render({ daemon: { jobs: ['backup', 'verify'] } });
    const argv: string[][] = [
      ...cron.filter((o) => o.kind === 'CronJob').map((o) => o.spec.jobTemplate.spec.template.spec.containers[0].args as string[]),
      (one(daemon, 'Deployment').spec.template.spec.containers[0].args as string[]).map((a) => (a === '$(POD_NAME)' ? 'tykdr-0' : a)),
    ];
    // tykdr@.service: ExecStart with %i and $TYKDR_ONCE_FLAGS expanded as systemd does.
    const unit = await readFile(path.join(repoRoot, 'deploy/systemd/tykdr@.service'), 'utf8');
    const exec = /^ExecStart=\/usr\/bin\/tykdr (.+)$/m.exec(unit)![1]!.split(/\s+/);
    for (const kind of JOB_KINDS) argv.push(exec.map((a) => (a === '%i' ? kind : a === '$TYKDR_ONCE_FLAGS' ? '--no-leader' : a)).filter((a) => a !== '--config' && a !== '/etc/tykdr/tykdr.yaml'));
    expect(argv).toHaveLength(4 + 1 + JOB_KINDS.length);
    for (const args of argv) {
      const r = await runCli(args, { env: { TYKDR_CONFIG: missing } });
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stdout + r.stderr, args.join(' ')).toContain(`cannot read config file ${missing}`);
    }
  });
});

describe('systemd units deploy/systemd', () => {
  const dir = path.join(repoRoot, 'deploy/systemd');

  it('pass systemd-analyze verify, are hardened, and every timer starts a job kind the daemon knows', async () => {
    const names = (await readdir(dir)).sort();
    const timers = names.filter((n) => n.endsWith('.timer'));
    expect(timers.map((t) => t.replace(/^tykdr-|\.timer$/g, '')).sort()).toEqual([...JOB_KINDS].sort());
    // A copy whose ExecStart is this checkout's bin/run.js (verify checks that the program exists).
    const copy = path.join(scratch, 'systemd');
    await mkdir(copy, { recursive: true });
    for (const n of names) {
      const text = await readFile(path.join(dir, n), 'utf8');
      await writeFile(path.join(copy, n), text.replaceAll('/usr/bin/tykdr', path.join(repoRoot, 'bin/run.js')));
      if (n.endsWith('.timer')) expect(text).toMatch(new RegExp(`^Unit=tykdr@${n.replace(/^tykdr-|\.timer$/g, '')}\\.service$`, 'm'));
      if (n.endsWith('.service')) {
        for (const d of ['NoNewPrivileges=true', 'ProtectSystem=strict', 'ProtectHome=true', 'PrivateTmp=true', 'CapabilityBoundingSet=', 'User=tykdr', 'SuccessExitStatus=130']) {
          expect(text, `${n}: ${d}`).toMatch(new RegExp(`^${d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
        }
      }
    }
    const r = await run('systemd-analyze', ['verify', '--man=no', ...names.map((n) => path.join(copy, n))], { cwd: copy });
    expect(r.code, r.stderr).toBe(0);
    // It prints warnings (unknown keys, bad values) and still exits 0: none is allowed.
    expect(r.stderr.trim()).toBe('');
    expect(r.stdout.trim()).toBe('');
  });

  it('systemd-analyze verify reports a mistake (the check can fail)', async () => {
    const copy = path.join(scratch, 'systemd-broken');
    await mkdir(copy, { recursive: true });
    const text = (await readFile(path.join(dir, 'tykdr.service'), 'utf8')).replaceAll('/usr/bin/tykdr', path.join(repoRoot, 'bin/run.js')).replace('ProtectSystem=strict', 'ProtectSystem=stricter');
    await writeFile(path.join(copy, 'tykdr.service'), text);
    const r = await run('systemd-analyze', ['verify', '--man=no', path.join(copy, 'tykdr.service')], { cwd: copy });
    expect(r.stderr).toContain('Failed to parse protect system value, ignoring: stricter');
  });
});
