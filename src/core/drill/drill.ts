import { rm } from 'node:fs/promises';
import path from 'node:path';
import { openStore } from '../../backends/stores/registry.js';
import type { Config, RedisComponent } from '../config/load.js';
import type { Plan } from '../plan/plan.js';
import { planMembers } from '../restore/preflight.js';
import { saveReport, type SavedReport } from '../restore/report-files.js';
import { chooseSnapshot, makeWorkDir, runRestore, type RestoreOptions, type RestoreOutcome } from '../restore/restore.js';
import { teardownDatabases, useScratchDatabases } from './scratch-databases.js';
import { startScratchRedis, type ScratchRedis } from '../../backends/redis/target/scratch-redis.js';

export interface DrillOptions {
  config: Config;
  plan: Plan;
  snapshot?: string;
  identityFile?: string;
  signal?: AbortSignal;
  progress?: RestoreOptions['progress'];
}

export interface DrillOutcome extends RestoreOutcome {
  saved: SavedReport;
}

/**
 * A DR drill: restores a snapshot with a plan into scratch targets that tykdr starts itself (a
 * redis-server on a free port, throwaway databases on the configured database servers, a temporary
 * folder for files), runs the plan's verifications, measures RTO and RPO, writes the report next to the
 * snapshot, and tears the scratch targets down. Production targets are never written, restarted or probed.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillOutcome> {
  const store = openStore(opts.config.store);
  const manifest = await chooseSnapshot(store, opts.snapshot, undefined, opts.signal);
  const members = planMembers(opts.plan, manifest, opts.config);
  const scratchDir = await makeWorkDir(opts.config.restore.stagingDir, 'tykdr-drill-');
  const redis: ScratchRedis[] = [];
  let databases: Awaited<ReturnType<typeof useScratchDatabases>> | undefined;
  try {
    const components = { ...opts.config.components };
    for (const name of members.redis) {
      const c = components[name] as RedisComponent;
      const s = await startScratchRedis(opts.config.drill.redisServer, scratchDir, opts.signal);
      redis.push(s);
      components[name] = {
        ...c,
        sentinel: undefined,
        restore: { ...c.restore, mode: 'live', target: { host: '127.0.0.1', port: s.port, password: s.password } },
      };
    }
    databases = await useScratchDatabases(members.database, manifest, components, opts.signal);
    const config: Config = { ...opts.config, components: databases.components };
    const outcome = await runRestore({
      config,
      plan: opts.plan,
      snapshot: manifest.id,
      kind: 'drill',
      yes: true,
      identityFile: opts.identityFile,
      filesTo: path.join(scratchDir, 'files'),
      signal: opts.signal,
      progress: opts.progress,
      store,
    });
    const saved = await saveReport(outcome.report, opts.config.drill.reportDir ?? opts.config.restore.reportDir, store);
    return { ...outcome, saved };
  } finally {
    await Promise.all(redis.map((s) => s.stop()));
    if (databases) await teardownDatabases(databases.created);
    await rm(scratchDir, { recursive: true, force: true });
  }
}
