import { rm } from 'node:fs/promises';
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
}

export interface DrillOutcome extends RestoreOutcome {
  saved: SavedReport;
}

/**
 * A DR drill: restores a snapshot with a plan into scratch targets that each component's Target provides
 * (a redis-server on a free port, throwaway databases on the configured database servers, a temporary
 * folder for files), runs the plan's verifications, measures RTO and RPO, writes the report next to the
 * snapshot, and tears the scratch targets down. Production targets are never written, restarted or probed.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillOutcome> {
  checkTicket(opts.ticket);
  const store = opts.store ?? opts.backends.openStore(opts.config.store);
  const manifest = await chooseSnapshot(store, opts.snapshot, undefined, opts.signal);
  // Refused before any scratch target starts (runRestore checks again, on the manifest it reads).
  await trustedManifest(store, manifest, opts.config.signing, opts.signal);
  const members = await planMembers(opts.plan, manifest, opts.config, opts.backends);
  for (const line of await sweepStaleWorkDirs(opts.config.restore.stagingDir)) opts.progress?.note?.(line);
  const scratchDir = await makeWorkDir(opts.config.restore.stagingDir, 'tykdr-drill-');
  const scratch: ScratchTarget[] = [];
  try {
    const components: Record<string, Component> = { ...opts.config.components };
    // One scratch target per configured component (a PostgreSQL component's dump and globals share one).
    const seen = new Set<string>();
    for (const { component, target } of members.resolved.values()) {
      if (seen.has(component.name)) continue;
      seen.add(component.name);
      const s = await target.scratch({ component, config: opts.config, dir: scratchDir, signal: opts.signal });
      scratch.push(s);
      components[component.name] = s.component;
    }
    const config: Config = { ...opts.config, components };
    const outcome = await runRestore({
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
      trigger: opts.trigger,
      ticket: opts.ticket,
    });
    const saved = await saveReport(outcome.report, opts.config.drill.reportDir ?? opts.config.restore.reportDir, store, undefined, opts.config.signing);
    return { ...outcome, saved };
  } finally {
    for (const s of scratch.reverse()) {
      for (const problem of await s.stop()) opts.progress?.note?.(`warning: ${problem}`);
    }
    await rm(scratchDir, { recursive: true, force: true });
  }
}
