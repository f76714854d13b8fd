import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Component, Config } from '../config/load.js';
import type { Backends } from '../interfaces/backends.js';
import type { Store } from '../interfaces/store.js';
import type { ScratchTarget } from '../interfaces/target.js';
import type { Plan } from '../plan/plan.js';
import { planMembers } from '../restore/preflight.js';
import { saveReport, type SavedReport } from '../restore/report-files.js';
import { makeWorkDir, sweepStaleWorkDirs } from '../restore/work-dirs.js';
import { chooseSnapshot, runRestore, type RestoreOptions, type RestoreOutcome } from '../restore/restore.js';
import { trustedManifest } from '../signing/manifest-signature.js';
import { checkTicket } from '../report/evidence.js';
import type { GatewayProof, RestoreReport } from '../restore/types.js';
import type { Manifest } from '../manifest.js';
import { parseDuration } from '../duration.js';
import { pickRandomSnapshot, type RandomPick } from './pick.js';
import { ScratchGateway } from './scratch-gateway.js';

export interface DrillOptions {
  config: Config;
  backends: Backends;
  plan: Plan;
  snapshot?: string;
  identityFile?: string;
  signal?: AbortSignal;
  progress?: RestoreOptions['progress'];
  /** For the report's evidence: "manual" (default) or the daemon's "schedule <job>". */
  trigger?: string;
  /** --ticket, for the report's evidence. */
  ticket?: string;
  /** The store to read (default: the primary store), and the stores passed over to get there. */
  store?: Store;
  storeFallback?: RestoreOptions['storeFallback'];
  /** --pick random --within D [--seed N]: an older recovery point instead of the latest (excludes `snapshot`). */
  pick?: RandomPick;
  /**
   * Runs the restore into the scratch targets (default runRestore). A point-in-time drill hands in the restore that
   * replays a chain after its base snapshot (`snapshot` is then the base).
   */
  restore?: (o: RestoreOptions) => Promise<RestoreOutcome>;
}

export interface DrillOutcome extends RestoreOutcome {
  saved: SavedReport;
}

/**
 * A DR drill: restores a snapshot with a plan into scratch targets that each component's Target provides
 * (a redis-server on a free port, throwaway databases on the configured database servers, a temporary
 * folder for files), runs the plan's verifications, measures RTO and RPO, writes the report next to the
 * snapshot, and tears the scratch targets down. Production targets are never written, restarted or probed.
 * With drill.gateway.binary and a plan with a gateway step, the gateway step starts that Tyk Gateway against
 * the scratch Redis and the restored files (ScratchGateway) and the gateway checks run against it; the report's
 * `gateway` section says whether the gateway was proven ("gateway not proven" also heads verdict.not_proven).
 * `pick` drills a seeded random snapshot of a window instead of the latest; the report says which and why.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillOutcome> {
  checkTicket(opts.ticket);
  const store = opts.store ?? opts.backends.openStore(opts.config.store);
  let manifest: Manifest;
  let picked: string | undefined;
  /** Newer snapshots passed over for a damaged manifest: the drill's report warns of them. */
  const passedOver: string[] = [];
  if (opts.pick) {
    const p = await pickRandomSnapshot(store, opts.pick, new Date(), opts.signal);
    manifest = p.manifest;
    picked = p.reason;
    opts.progress?.note?.(`snapshot ${manifest.id} (created ${manifest.created_at}): ${picked}`);
  } else {
    manifest = await chooseSnapshot(store, opts.snapshot, undefined, opts.signal, passedOver);
  }
  // Refused before any scratch target starts (runRestore checks again, on the manifest it reads).
  await trustedManifest(store, manifest, opts.config.signing, opts.signal);
  const members = await planMembers(opts.plan, manifest, opts.config, opts.backends);
  for (const line of await sweepStaleWorkDirs(opts.config.restore.stagingDir)) opts.progress?.note?.(line);
  const scratchDir = await makeWorkDir(opts.config.restore.stagingDir, 'tykdr-drill-');
  const scratch: ScratchTarget[] = [];
  let gateway: ScratchGateway | undefined;
  try {
    const components: Record<string, Component> = { ...opts.config.components };
    // One scratch target per configured component (a PostgreSQL component's dump and globals share one).
    const seen = new Set<string>();
    for (const [name, { component, target }] of members.resolved) {
      if (seen.has(component.name)) continue;
      seen.add(component.name);
      const s = await target.scratch({ component, config: opts.config, dir: scratchDir, entry: manifest.components[name], signal: opts.signal });
      scratch.push(s);
      components[component.name] = s.component;
    }
    const config: Config = { ...opts.config, components };
    const gw = opts.config.drill.gateway;
    const gatewayStep = opts.plan.ordered.some((s) => s.component === 'gateway');
    if (gw && gatewayStep) {
      const redis = scratch.map((s) => s.component).find((c) => c.kind === 'redis');
      const files = scratch.map((s) => s.component).find((c) => c.kind === 'files');
      const target = redis?.kind === 'redis' ? redis.restore.target : undefined;
      gateway = new ScratchGateway({
        binary: gw.binary,
        templates: gw.templates,
        startTimeoutMs: parseDuration(gw.startTimeout) ?? 60_000,
        dir: scratchDir,
        manifest,
        filesTo: files?.kind === 'files' ? files.restore.to : undefined,
        redis: target?.host !== undefined && target.port !== undefined ? { host: target.host, port: target.port, password: target.password } : undefined,
        configured: opts.config.gateway,
      });
    }
    const outcome = await (opts.restore ?? runRestore)({
      config,
      backends: opts.backends,
      plan: opts.plan,
      snapshot: manifest.id,
      kind: 'drill',
      yes: true,
      identityFile: opts.identityFile,
      signal: opts.signal,
      progress: opts.progress,
      store,
      storeFallback: opts.storeFallback,
      passedOver,
      trigger: opts.trigger,
      ticket: opts.ticket,
      drillGateway: gateway,
    });
    const reportDir = opts.config.drill.reportDir ?? opts.config.restore.reportDir;
    if (picked) outcome.report.snapshot.picked = picked;
    const described = scratch.filter((s) => s.description !== undefined);
    if (described.length > 0) outcome.report.scratch_targets = Object.fromEntries(described.map((s) => [s.component.name, s.description!]));
    outcome.report.warnings.push(...scratch.flatMap((s) => s.warnings ?? []));
    if (gatewayStep) {
      for (const problem of (await gateway?.stop()) ?? []) opts.progress?.note?.(`warning: ${problem}`);
      const proof = gatewayProof(outcome.report, gw?.binary, gateway?.spawned ?? false);
      if (!proof.proven && gateway?.spawned) proof.log = await keepLog(gateway.logFile, reportDir, outcome.report.id);
      outcome.report.gateway = proof;
      if (!proof.proven) outcome.report.verdict.not_proven.unshift(proof.summary);
    }
    const saved = await saveReport(outcome.report, reportDir, store, undefined, opts.config.signing);
    return { ...outcome, saved };
  } finally {
    for (const problem of (await gateway?.stop()) ?? []) opts.progress?.note?.(`warning: ${problem}`);
    for (const s of scratch.reverse()) {
      for (const problem of await s.stop()) opts.progress?.note?.(`warning: ${problem}`);
    }
    await rm(scratchDir, { recursive: true, force: true });
  }
}

const GATEWAY_CHECKS = ['gateway-ready', 'gateway-hello', 'gateway-key-probe', 'gateway-loaded'];

/** Whether the drill proved that a Tyk Gateway serves the restored keys, in one sentence. */
function gatewayProof(report: RestoreReport, binary: string | undefined, spawned: boolean): GatewayProof {
  if (binary === undefined) {
    return { proven: false, summary: 'gateway not proven: drill.gateway.binary is not set, so no Tyk Gateway was started and the gateway checks were skipped' };
  }
  const step = report.steps.find((s) => s.component === 'gateway');
  if (!spawned || step === undefined) {
    const why = step?.reason ?? 'the gateway step did not run';
    return { proven: false, binary, summary: `gateway not proven: the drill gateway was not started (${why})` };
  }
  const hello = step.checks.find((c) => c.name === 'gateway-hello');
  const version = typeof hello?.evidence?.version === 'string' ? hello.evidence.version : null;
  const checks = GATEWAY_CHECKS.map((n) => step.checks.find((c) => c.name === n) ?? { name: n, status: 'skipped' as const, detail: 'not run' });
  const failed = checks.find((c) => c.status === 'failed');
  if (failed) return { proven: false, binary, version, summary: `gateway not proven: ${failed.name} failed: ${failed.detail}` };
  const skipped = checks.find((c) => c.status === 'skipped');
  if (skipped) return { proven: false, binary, version, summary: `gateway not proven: ${skipped.name} was skipped: ${skipped.detail}` };
  return {
    proven: true,
    binary,
    version,
    summary: `gateway proven: ${binary}${version ? ` (${version})` : ''} answered /ready and /hello with Redis, proxied the canary key, refused a random key, and loaded the snapshot's APIs and policies`,
  };
}

/** The drill gateway's log (secrets already replaced) beside the report, since the work folder goes away. */
async function keepLog(logFile: string, reportDir: string, reportId: string): Promise<string | undefined> {
  const to = path.resolve(reportDir, `drill-${reportId}-gateway.log`);
  try {
    await mkdir(reportDir, { recursive: true });
    await copyFile(logFile, to);
    return to;
  } catch {
    return undefined;
  }
}
