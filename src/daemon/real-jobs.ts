import { runBackup } from '../core/backup.js';
import { formatBytes } from '../core/duration.js';
import type { Config } from '../core/config/load.js';
import { loadPlan } from '../core/plan/plan.js';
import { PLAN_COMPONENTS, type PlanComponent } from '../core/plan/roles.js';
import type { Backends } from '../core/interfaces/backends.js';
import type { Target } from '../core/interfaces/target.js';
import { errorMessage, type Logger } from './log.js';
import type { DrillOutcomes, DrillPlanOutcome, DrillRecordSummary, Jobs, JobSummary } from './jobs.js';
import { backends as realBackends } from '../wiring.js';
import { openLoggingStore } from './store-log.js';
import { namedStores } from '../core/copies/named-stores.js';

// ---------------------------------------------------------------------------------------------------
// WIRING TO CHECK when the parallel work is merged (this is the only file that names those services).
// At the time of writing they existed in the working tree, uncommitted, with these APIs:
//   prune  -> pruneSnapshots  (src/core/retention/prune.ts)            { store, policy, confirm, signal }
//   verify -> verifySnapshots (src/core/integrity/verify-snapshots.ts) { config, snapshots, samplePercent, signal }
//   drill  -> runDrill        (src/core/drill/drill.ts)                { config, plan, signal }
// They are imported when their job first runs, not at start-up: a module that fails to load then fails
// that job (logged, counted, notified for drills) instead of keeping the daemon, and its backups, down.
// ---------------------------------------------------------------------------------------------------
const loadPrune = () => import('../core/retention/prune.js');
const loadVerify = () => import('../core/integrity/verify-snapshots.js');
const loadDrill = () => import('../core/drill/drill.js');
const loadCopy = () => import('../core/copies/copy-many.js');
const loadDrillHistory = () => import('../core/drill/history.js'); // listDrills(store, { signal })

/** The services the daemon runs, on a loaded config. */
export function realJobs(config: Config, log: Logger): Jobs {
  // Every store the jobs open logs its retries and stalls.
  const backends: Backends = { ...realBackends, openStore: (cfg) => openLoggingStore(cfg, log) };
  return {
    backup: (components, signal) =>
      runBackup({
        config,
        backends,
        components,
        signal,
        progress: {
          componentDone: (component, entry) =>
            log.debug('component backed up', { component, duration_ms: entry.duration_ms, stored_bytes: entry.artifact.stored_bytes }),
        },
      }),

    prune: async (signal): Promise<JobSummary> => {
      const { pruneSnapshots } = await loadPrune();
      const r = await pruneSnapshots({ store: backends.openStore(config.store), policy: config.retention, evidence: config.evidence, confirm: true, signal });
      const t = r.totals;
      const failures = r.snapshots.filter((e) => e.removal?.status === 'failed').map((e) => ({ snapshot: e.id, error: e.removal!.error }));
      const u = r.unfinished;
      for (const e of u.entries.filter((x) => x.action === 'failed')) failures.push({ snapshot: `unfinished upload of ${e.key}`, error: e.error });
      if (u.error !== undefined) failures.push({ snapshot: 'unfinished uploads', error: u.error });
      return {
        ok: t.failed === 0 && u.totals.failed === 0 && u.error === undefined,
        message:
          `removed ${t.removed} snapshot(s) (${t.objects} objects, ${formatBytes(t.bytes)}), kept ${t.kept}${t.locked ? `, ${t.locked} locked` : ''}${t.failed ? `, ${t.failed} FAILED` : ''}` +
          `; ${u.totals.removed} unfinished upload(s) removed${u.totals.failed || u.error ? ' (sweep FAILED)' : ''}`,
        details: {
          ...t,
          unfinished_removed: u.totals.removed,
          removed_ids: r.snapshots.filter((e) => e.removal?.status === 'removed').map((e) => e.id),
          failures,
        },
      };
    },

    verify: async (samplePercent, signal): Promise<JobSummary> => {
      const { verifySnapshots } = await loadVerify();
      const r = await verifySnapshots({ config, backends, snapshots: 'all', samplePercent, signal });
      const failures = r.objects.filter((o) => o.status === 'failed').map((o) => ({ snapshot: o.snapshot, object: o.object, error: o.message }));
      return {
        ok: r.ok,
        message:
          `checked ${r.checked} object(s) in ${r.snapshots.length} snapshot(s) (${r.samplePercent}% sample): ${r.failed} failed` +
          `${r.refused.length ? `; ${r.refused.length} snapshot(s) refused for their manifest signature` : ''}` +
          `${r.unreadable.length ? `; ${r.unreadable.length} snapshot(s) whose manifest the store failed to give (${r.unreadable[0]!.id}: ${r.unreadable[0]!.reason})` : ''}` +
          `${r.damaged.length ? `; ${r.damaged.length} snapshot(s) whose manifest is damaged (${r.damaged[0]!.id}: ${r.damaged[0]!.reason})` : ''}`,
        details: { checked: r.checked, failed: r.failed, failures, refused: r.refused, unreadable: r.unreadable, damaged: r.damaged },
      };
    },

    drillHistory: async (signal): Promise<DrillRecordSummary[]> => {
      const { listDrills } = await loadDrillHistory();
      const records = await listDrills(backends.openStore(config.store), { signal });
      return records.map((r) => ({ plan: r.plan, passed: r.status === 'succeeded', rtoSeconds: r.rtoSeconds, finishedAt: new Date(r.finishedAt) }));
    },

    copy: async (snapshotId, signal) => {
      const targets = namedStores(config).filter((s) => s.copy?.auto);
      const copied: string[] = [];
      const failures: Array<{ store: string; error: string }> = [];
      if (targets.length === 0) return { ok: true, message: 'no copy store with auto: nothing to copy', copied };
      const { copySnapshots, missingSnapshots } = await loadCopy();
      const from = backends.openStore(config.store);
      for (const t of targets) {
        signal.throwIfAborted();
        try {
          const to = backends.openStore(t.cfg);
          // Earlier snapshots whose copy failed (the copy store was down) are caught up with the new one, each on its own:
          // one that cannot be copied (its manifest damaged, or in a newer format: prune keeps those) is said and passed
          // over, never a reason to leave the new snapshot uncopied.
          const behind = (await missingSnapshots(from, to, signal)).filter((id) => id !== snapshotId);
          const results = [];
          for (const id of behind) {
            try {
              results.push(...(await copySnapshots({ from, to, ids: [id], check: true, signal })));
            } catch (err) {
              if (signal.aborted) throw err;
              log.warn('an earlier snapshot missing from a copy store could not be copied; the new one is copied anyway', { snapshot: id, store: t.name, error: errorMessage(err) });
            }
          }
          results.push(...(await copySnapshots({ from, to, ids: [snapshotId], check: true, signal })));
          copied.push(t.name);
          for (const r of results) log.info('snapshot copied', { snapshot: r.id, store: t.name, bytes_copied: r.bytesCopied, duration_ms: r.durationMs, checked_objects: r.checked?.objects, ...(r.id === snapshotId ? {} : { caught_up: true }) });
        } catch (err) {
          if (signal.aborted) throw err;
          failures.push({ store: t.name, error: errorMessage(err) });
        }
      }
      return {
        ok: failures.length === 0,
        message: `snapshot ${snapshotId} copied to ${copied.length} of ${targets.length} store(s)${failures.length ? `; FAILED: ${failures.map((f) => `${f.store}: ${f.error}`).join('; ')}` : ''}`,
        details: { snapshot: snapshotId, copied, failures },
        copied,
      };
    },

    storesLatest: async (signal) => {
      const { listSnapshots } = await import('../core/catalog.js');
      const out: Array<{ store: string; latest: Date | null }> = [];
      for (const s of namedStores(config)) {
        const listed = await listSnapshots(backends.openStore(s.cfg), signal);
        const at = listed.findIndex((x) => x.complete);
        const latest = at < 0 ? undefined : listed[at];
        // Newer ones (the listing is newest first) passed over: the metric then shows an older snapshot (an alert, never
        // a hidden one): say why.
        const newer = at < 0 ? listed : listed.slice(0, at);
        const why = [
          [(x: (typeof newer)[number]) => x.unreadable, 'could not be read'],
          [(x: (typeof newer)[number]) => x.damaged, 'is damaged'],
          [(x: (typeof newer)[number]) => x.newerFormat, 'is in a format this tykdr does not read (a newer tykdr wrote it)'],
        ] as const;
        for (const [is, what] of why) {
          const first = newer.find((x) => is(x));
          if (first) log.warn(`a newer manifest ${what}: the store latest timestamp is of an older snapshot`, { store: s.name, snapshot: first.id, error: first.problem });
        }
        out.push({ store: s.name, latest: latest?.createdAt ?? null });
      }
      return out;
    },

    drill: async (kind, signal): Promise<DrillOutcomes> => {
      const { runDrill } = await loadDrill();
      const plans = kind === 'full' ? ['full'] : await componentPlans(config);
      const out: DrillPlanOutcome[] = [];
      for (const name of plans) {
        signal.throwIfAborted();
        try {
          const plan = await loadPlan(name);
          const trigger = `schedule drill-${kind} (schedule.drills.${kind})`;
          const { report, failureKind } = await runDrill({ config, backends, plan, signal, trigger });
          const failedStep = report.steps.find((s) => s.status === 'failed');
          out.push({
            plan: name,
            passed: report.status === 'succeeded' && failureKind === undefined,
            rtoSeconds: report.rto.achievedSeconds,
            snapshot: report.snapshot.id,
            ...(failedStep
              ? { reason: `step ${failedStep.id}: ${failedStep.reason ?? 'failed'}` }
              : report.verdict.missed.length
                ? { reason: `objective missed: ${report.verdict.missed.join('; ')}` }
                : {}),
            details: {
              report_id: report.id,
              rto_objective_seconds: report.rto.objectiveSeconds,
              rto_met: report.rto.met,
              missed: report.verdict.missed,
              not_proven: report.verdict.not_proven,
            },
          });
        } catch (err) {
          if (signal.aborted) throw err;
          out.push({ plan: name, passed: false, rtoSeconds: null, reason: errorMessage(err) });
        }
      }
      return { plans: out };
    },
  };
}

/** Component drills: one plan per plan role a configured component has (redis, database, gateway files, dashboard files). */
export async function componentPlans(config: Config, kinds: Pick<Backends, 'target'> = realBackends): Promise<PlanComponent[]> {
  const roles = new Set<PlanComponent>();
  for (const c of Object.values(config.components)) {
    const role = ((await kinds.target(c.kind)) as Target).roleOf(c);
    if (role) roles.add(role);
  }
  return PLAN_COMPONENTS.filter((r) => roles.has(r));
}
