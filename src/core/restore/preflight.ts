import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { inspectMongoTarget } from '../../backends/mongo/target/inspect-target.js';
import { inspectPostgresTarget } from '../../backends/postgres/target/restore-postgres.js';
import { inspectRedisTarget, restoreModeStartsTarget } from '../../backends/redis/target/restore-redis.js';
import type { Config, FilesComponent, MongoComponent, PostgresComponent, RedisComponent } from '../config/load.js';
import { badInput } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { Plan } from '../plan/plan.js';
import { PLAN_COMPONENTS, type PlanComponent } from '../plan/schema.js';
import { secretMatchesFingerprint } from '../tyk/tyk-conf.js';
import { destinationOf } from '../../backends/files/target/restore-files.js';

export interface TargetAssessment {
  component: string;
  /** Where it goes, for people: "redis 10.0.0.5:6379", "/opt/tyk-gateway". */
  target: string;
  /** What would be overwritten ("2,004 keys", "12 entries"), or null when the target is empty. */
  liveData: string | null;
  warning?: string;
}

const DATABASE_KINDS = ['postgres', 'postgres-globals', 'mongo'];

/** Which snapshot components each plan role restores. */
export function planMembers(plan: Plan, manifest: Manifest, config: Config): Record<PlanComponent, string[]> {
  const out = Object.fromEntries(PLAN_COMPONENTS.map((c) => [c, [] as string[]])) as Record<PlanComponent, string[]>;
  const used = new Set(plan.ordered.filter((s) => s.action === 'restore').map((s) => s.component));
  for (const [name, c] of Object.entries(manifest.components)) {
    const role: PlanComponent | null =
      c.kind === 'redis' ? 'redis'
      : DATABASE_KINDS.includes(c.kind) ? 'database'
      : c.kind === 'files' ? (c.source.role === 'dashboard' ? 'dashboard' : c.source.role === undefined || c.source.role === 'gateway' ? 'gateway' : null)
      : null;
    if (role === null || !used.has(role)) continue;
    const cfgName = c.config_component ?? name;
    const cfg = config.components[cfgName];
    if (!cfg || cfg.kind !== c.kind.replace(/-globals$/, '')) {
      throw badInput(
        `snapshot ${manifest.id} has a ${c.kind} component "${name}" that ${config.file} does not configure`,
        `add components.${cfgName} (kind: ${c.kind.replace(/-globals$/, '')}) to tykdr.yaml so tykdr knows where to restore it`,
      );
    }
    out[role].push(name);
  }
  return out;
}

/** Looks at every target without changing it: what it holds now, and what the operator must know. */
export async function assessTargets(
  plan: Plan,
  members: Record<PlanComponent, string[]>,
  config: Config,
  filesTo: string | undefined,
  signal?: AbortSignal,
  manifest?: Manifest,
): Promise<TargetAssessment[]> {
  const out: TargetAssessment[] = [];
  for (const name of members.database) {
    const entry = manifest?.components[name];
    const cfgName = entry?.config_component ?? name;
    const c = config.components[cfgName];
    if (c?.kind === 'postgres' && entry?.kind === 'postgres') {
      const t = await inspectPostgresTarget(c as PostgresComponent);
      out.push({
        component: name,
        target: `postgres ${t.address}/${t.database} (PostgreSQL ${t.serverVersion})`,
        liveData: t.exists && t.tables > 0 ? `${t.tables} tables, about ${t.estimatedRows} rows` : null,
      });
    } else if (c?.kind === 'mongo' && entry) {
      const t = await inspectMongoTarget(c as MongoComponent, entry, signal);
      out.push({
        component: name,
        target: `mongo ${t.display}/${t.database}`,
        liveData: t.overwritten.length > 0 ? `${t.overwritten.length} collections replaced, ${t.documents} documents` : null,
      });
    }
  }
  for (const name of members.redis) {
    const c = config.components[name] as RedisComponent;
    try {
      const t = await inspectRedisTarget(c, signal);
      out.push({ component: name, target: `redis ${t.address} (Redis ${t.redisVersion}, ${c.restore.mode})`, liveData: t.keys > 0 ? `${t.keys} keys` : null });
    } catch (err) {
      if (!restoreModeStartsTarget(c)) throw err;
      out.push({
        component: name,
        target: `redis (${c.restore.mode} into ${c.restore.dataDir ?? '?'})`,
        liveData: null,
        warning: `${name}: target Redis not reachable before the restore (${(err as Error).message}); its version could not be checked`,
      });
    }
  }
  for (const role of ['dashboard', 'gateway'] as const) {
    for (const name of members[role]) {
      const c = config.components[name] as FilesComponent;
      const to = filesTo ?? c.restore.to;
      for (const root of c.roots) {
        const dest = destinationOf(path.relative('/', root), to);
        const n = await readdir(dest).then((e) => e.length, () => 0);
        out.push({ component: name, target: dest, liveData: n > 0 ? `${n} entries` : null });
      }
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
