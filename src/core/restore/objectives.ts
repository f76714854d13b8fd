import type { TierName } from '../config/schema.js';
import type { Objective } from '../config/load.js';
import type { Manifest } from '../manifest.js';
import type { RestoreReport, StepResult } from './types.js';

const TIER_ORDER: TierName[] = ['critical', 'important', 'standard', 'development'];

/**
 * RTO: from the incident to the moment the last verification passed. Achieved only when every step
 * succeeded; measured against the strictest tier among the restored components.
 */
export function measureRto(opts: {
  incidentAt: Date;
  steps: StepResult[];
  succeeded: boolean;
  tiers: Record<TierName, Objective>;
  componentTiers: string[];
}): RestoreReport['rto'] {
  const tier = strictest(opts.componentTiers);
  const objectiveSeconds = opts.tiers[tier].rtoMs / 1000;
  const passed = opts.steps.flatMap((s) => s.checks.filter((c) => c.status === 'passed').map((c) => Date.parse(c.finishedAt)));
  const last = passed.length ? Math.max(...passed) : null;
  const served = serviceRestored(opts.steps);
  const service = {
    service_restored_at: served === null ? null : new Date(served).toISOString(),
    service_restored_seconds: served === null ? null : (served - opts.incidentAt.getTime()) / 1000,
  };
  if (!opts.succeeded || last === null) {
    return { tier, objectiveSeconds, achievedSeconds: null, met: false, last_verified_at: last === null ? null : new Date(last).toISOString(), ...service };
  }
  const achievedSeconds = (last - opts.incidentAt.getTime()) / 1000;
  return { tier, objectiveSeconds, achievedSeconds, met: achievedSeconds <= objectiveSeconds, last_verified_at: new Date(last).toISOString(), ...service };
}

/** When traffic was served again: the first passed canary key probe, else the first passed gateway check; null if none. */
function serviceRestored(steps: StepResult[]): number | null {
  const passed = (pred: (name: string) => boolean) =>
    steps.flatMap((s) => s.checks.filter((c) => c.status === 'passed' && pred(c.name)).map((c) => Date.parse(c.finishedAt)));
  const probes = passed((n) => n === 'gateway-key-probe');
  const gateway = probes.length ? probes : passed((n) => n.startsWith('gateway-'));
  return gateway.length ? Math.min(...gateway) : null;
}

/** RPO per snapshot component: incident time minus the component's consistent point. */
export function measureRpo(opts: {
  incidentAt: Date;
  manifest: Manifest;
  components: string[];
  tiers: Record<TierName, Objective>;
}): RestoreReport['rpo'] {
  const out: RestoreReport['rpo'] = {};
  for (const name of opts.components) {
    const c = opts.manifest.components[name];
    if (!c) continue;
    const tier = (TIER_ORDER.includes(c.tier as TierName) ? c.tier : 'standard') as TierName;
    const objectiveSeconds = opts.tiers[tier].rpoMs / 1000;
    const achievedSeconds = Math.max(0, (opts.incidentAt.getTime() - Date.parse(c.consistent_at)) / 1000);
    out[name] = { tier, objectiveSeconds, achievedSeconds, met: achievedSeconds <= objectiveSeconds, consistent_at: c.consistent_at };
  }
  return out;
}

function strictest(tiers: string[]): TierName {
  const known = tiers.filter((t): t is TierName => TIER_ORDER.includes(t as TierName));
  if (known.length === 0) return 'critical';
  return TIER_ORDER.find((t) => known.includes(t))!;
}

/** The objectives a run missed, for people: "RTO 3m 10s against 1m (critical)". Only measured ones count. */
export function missedObjectives(rto: RestoreReport['rto'], rpo: RestoreReport['rpo'], stepsSucceeded: boolean): string[] {
  const out: string[] = [];
  const s = (x: number) => `${Math.round(x * 10) / 10} s`;
  if (stepsSucceeded && rto.met === false && rto.achievedSeconds !== null) out.push(`RTO ${s(rto.achievedSeconds)} against ${s(rto.objectiveSeconds)} (${rto.tier})`);
  for (const [name, o] of Object.entries(rpo)) {
    if (o.met === false && o.achievedSeconds !== null) out.push(`RPO ${name} ${s(o.achievedSeconds)} against ${s(o.objectiveSeconds)} (${o.tier})`);
  }
  return out;
}
