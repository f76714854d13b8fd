import { readFile, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatBytes } from '../duration.js';
import type { Component, Config, FilesComponent } from '../config/load.js';
import { badInput } from '../errors.js';
import type { Backends } from '../interfaces/backends.js';
import type { Target, TargetAssessment } from '../interfaces/target.js';
import type { Manifest } from '../manifest.js';
import type { Plan } from '../plan/plan.js';
import { PLAN_COMPONENTS, type PlanComponent } from '../plan/roles.js';
import { secretMatchesFingerprint } from '../tyk/tyk-conf.js';
import { destinationOf } from './destination.js';
import { makeDir } from '../util/make-dir.js';

export type { TargetAssessment };

/** Which snapshot components each plan role restores, and the config component and target of each. */
export interface PlanMembers {
  byRole: Record<PlanComponent, string[]>;
  /** snapshot component name -> its configured component and the target that restores it. */
  resolved: Map<string, { component: Component; target: Target }>;
}

/** Which snapshot components each plan role restores; every one must be configured. */
export async function planMembers(plan: Plan, manifest: Manifest, config: Config, backends: Backends): Promise<PlanMembers> {
  const byRole = Object.fromEntries(PLAN_COMPONENTS.map((c) => [c, [] as string[]])) as Record<PlanComponent, string[]>;
  const resolved = new Map<string, { component: Component; target: Target }>();
  const used = new Set(plan.ordered.filter((s) => s.action === 'restore').map((s) => s.component));
  for (const [name, entry] of Object.entries(manifest.components)) {
    const cfgName = entry.config_component ?? name;
    const cfg = config.components[cfgName];
    const target = cfg ? ((await backends.target(cfg.kind)) as Target) : await backends.targetForArtifact(entry.kind);
    const role = target ? target.role(entry) : null;
    if (role === null || !used.has(role)) continue;
    if (!cfg) {
      throw badInput(
        `snapshot ${manifest.id} has a ${entry.kind} component "${name}" that ${config.file} does not configure`,
        `add components.${cfgName} (kind: ${target!.kind}) to tykdr.yaml so tykdr knows where to restore it`,
      );
    }
    if (!target!.artifactKinds.includes(entry.kind)) {
      throw badInput(
        `snapshot ${manifest.id} has a ${entry.kind} component "${name}", but components.${cfgName} in ${config.file} is of kind ${cfg.kind}`,
        `add a components entry of kind ${entry.kind} named ${cfgName}, so tykdr knows where to restore it`,
      );
    }
    byRole[role!].push(name);
    resolved.set(name, { component: cfg, target: target! });
  }
  return { byRole, resolved };
}

/** Looks at every target without changing it: what it holds now, and what the operator must know. */
export async function assessTargets(members: PlanMembers, manifest: Manifest, filesTo: string | undefined, signal?: AbortSignal): Promise<TargetAssessment[]> {
  const out: TargetAssessment[] = [];
  // In plan order of roles (database, redis, files), as before: the confirmation lists them so.
  const order: PlanComponent[] = ['database', 'redis', 'dashboard', 'gateway'];
  for (const role of order) {
    for (const name of members.byRole[role]) {
      const { component, target } = members.resolved.get(name)!;
      out.push(...(await target.assess({ name, component, entry: manifest.components[name]!, filesTo, signal })));
    }
  }
  return out;
}

/**
 * Certificates in Redis are encrypted with the gateway secret of the snapshot. Before Redis is restored,
 * compare the target gateway's tyk.conf with the fingerprint in the manifest.
 */
export async function secretWarnings(manifest: Manifest, members: Record<PlanComponent, string[]>, config: Config, filesTo?: string): Promise<string[]> {
  const fp = manifest.tyk?.secret_fingerprint;
  if (typeof fp !== 'string' || members.redis.length === 0) return [];
  const tykFile = String(manifest.tyk?.file ?? '');
  const restoredWithPlan = members.gateway.some((n) => ((manifest.components[n]?.source.roots as string[] | undefined) ?? []).some((r) => `/${tykFile}`.startsWith(r)));
  const gatewayFiles = Object.values(config.components).find((c): c is FilesComponent & { kind: 'files' } => c.kind === 'files' && c.role === 'gateway');
  const target = gatewayFiles ? destinationOf(tykFile, filesTo ?? gatewayFiles.restore.to) : null;
  if (!target) return ['no gateway files component in tykdr.yaml: the gateway secret could not be compared with the snapshot'];
  let text: string;
  try {
    text = await readFile(target, 'utf8');
  } catch {
    return restoredWithPlan ? [] : [`cannot read ${target} to compare the gateway secret with the snapshot; certificates may be unusable if it differs`];
  }
  let secret = '';
  try {
    secret = String((JSON.parse(text) as { secret?: unknown }).secret ?? '');
  } catch {
    return [`${target} is not valid JSON: the gateway secret could not be compared with the snapshot`];
  }
  if (secretMatchesFingerprint(secret, fp)) return [];
  return restoredWithPlan
    ? [`the gateway secret in ${target} differs from the snapshot's; this plan restores the snapshot's tyk.conf, so restart every gateway with it or certificates stay unusable`]
    : [`GATEWAY SECRET MISMATCH: ${target} has a different secret than the snapshot. Certificates restored into Redis are encrypted with the snapshot's secret and will be UNUSABLE by this gateway. Restore the snapshot's tyk.conf (plan gateway) or set the old secret.`];
}

/**
 * Everything a restore needs that can be known before the first write. Throws badInput naming what is wrong:
 * - a plan step restores a role whose component tykdr.yaml configures but the snapshot lacks (unless
 *   `allowPartial`: then the step is skipped, said so in the report);
 * - a --target names a component this restore does not restore;
 * - the report folder cannot be written, or the staging folder lacks room for the staged artifacts.
 */
export async function preflightRestore(o: {
  plan: Plan;
  manifest: Manifest;
  config: Config;
  members: PlanMembers;
  backends: Backends;
  allowPartial: boolean;
  targetOverrides?: Record<string, unknown>;
  stagingDir: string;
  reportDir: string;
  /** What staging writes (stagingNeed). */
  stagingBytes: number;
}): Promise<string[]> {
  const notes: string[] = [];
  for (const step of o.plan.ordered) {
    if (step.action !== 'restore' || o.members.byRole[step.component].length > 0) continue;
    const configured: string[] = [];
    for (const c of Object.values(o.config.components)) if (((await o.backends.target(c.kind)) as Target).roleOf(c) === step.component) configured.push(c.name);
    if (configured.length === 0) continue;
    const what = `plan ${o.plan.name} step ${step.id} restores ${step.component} (${configured.join(', ')} in ${o.config.file}), but snapshot ${o.manifest.id} has no ${step.component} component`;
    if (!o.allowPartial) throw badInput(what, 'choose a snapshot that has it (tykdr snapshots), a plan without that step, or pass --allow-partial to restore the rest');
    notes.push(`${what}: skipped (--allow-partial)`);
  }
  for (const name of Object.keys(o.targetOverrides ?? {})) {
    if (!o.members.resolved.has(name)) {
      throw badInput(
        `--target ${name}=...: plan ${o.plan.name} restores no component "${name}" from snapshot ${o.manifest.id}`,
        `restored here: ${[...o.members.resolved.keys()].join(', ') || '(nothing)'}; drop --target or pick a snapshot that has ${name}`,
      );
    }
  }
  await writable(o.reportDir, 'restore.reportDir');
  await writable(o.stagingDir, 'restore.stagingDir');
  const fs = await statfs(o.stagingDir).catch(() => null);
  if (fs) {
    const free = fs.bavail * fs.bsize;
    const need = Math.ceil(o.stagingBytes * 1.05) + 16 * 1024 * 1024;
    if (free < need) {
      throw badInput(
        `the staging folder ${o.stagingDir} has ${formatBytes(free)} free; staging this snapshot needs about ${formatBytes(need)}`,
        'free space there, or set restore.stagingDir to a folder with room (nothing was changed)',
      );
    }
  }
  return notes;
}

/**
 * Bytes the staging folder holds for these snapshot components: what each target says (Target.stagingBytes), else
 * the plaintext, plus the stored bytes for an artifact staged still compressed (it may be decompressed into a file
 * beside it: PostgreSQL with --jobs).
 */
export function stagingNeed(names: string[], manifest: Manifest, members: PlanMembers): number {
  let n = 0;
  for (const name of names) {
    const entry = manifest.components[name]!;
    const m = members.resolved.get(name);
    const own = m?.target.stagingBytes?.(entry, m.component);
    if (own !== undefined) n += own;
    else n += entry.artifact.plaintext_bytes + (m?.target.stagesCompressed?.(entry, m.component) === true ? entry.artifact.stored_bytes : 0);
  }
  return n;
}

async function writable(dir: string, setting: string): Promise<void> {
  const probe = path.join(dir, `.tykdr-write-test-${process.pid}`);
  try {
    await makeDir(dir);
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (err) {
    throw badInput(`${setting} ${dir} cannot be written (${(err as NodeJS.ErrnoException).code ?? err})`, `make it writable or set ${setting} to another folder (nothing was changed)`, err);
  }
}
