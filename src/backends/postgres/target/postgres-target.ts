import { randomBytes } from 'node:crypto';
import type { PostgresComponent } from '../../../core/config/load.js';
import type { Target } from '../../../core/interfaces/target.js';
import { connectPg, targetEndpoint } from '../connection.js';
import { checksBy } from '../../../core/checks/registry.js';
import { inspectPostgresTarget, restorePostgres } from './restore-postgres.js';

/** PostgreSQL (the Dashboard's database): pg_restore of the custom-format archive, plus the globals SQL. */
export const postgresTarget: Target<PostgresComponent> = {
  kind: 'postgres',
  artifactKinds: ['postgres', 'postgres-globals'],
  checks: checksBy('database'),
  role: () => 'database',
  roleOf: () => 'database',

  async assess({ name, component, entry }) {
    if (entry.kind !== 'postgres') return [];
    const excluded = Array.isArray(entry.source.excluded_tables) ? (entry.source.excluded_tables as unknown[]).map(String) : [];
    const t = await inspectPostgresTarget(component, excluded);
    const kept = t.keptTables > 0 ? `; ${t.keptTables} excluded tables (about ${t.keptRows} rows) are kept` : '';
    return [
      {
        component: name,
        target: `postgres ${t.address}/${t.database} (PostgreSQL ${t.serverVersion})`,
        liveData: t.exists && t.tables > 0 ? `${t.tables} tables replaced, about ${t.estimatedRows} rows${kept}` : null,
      },
    ];
  },

  async restore(i) {
    i.note(`  restoring ${i.name} (${i.entry.kind})`);
    return restorePostgres({
      component: i.component,
      manifest: i.entry,
      stagedFile: i.stagedFile,
      ...(i.stagedCompression ? { stagedCompression: i.stagedCompression } : {}),
      workDir: i.workDir,
      checks: [...i.checks],
      signal: i.signal,
    });
  },

  /**
   * A dump is staged still compressed: one job decompresses it as pg_restore reads it (no plaintext file written
   * first); --jobs and the list of excluded tables get a plaintext file made from it (restore-postgres.ts), with
   * its row chunks merged and data offsets written in on the way.
   */
  stagesCompressed: (entry) => entry.kind === 'postgres',

  /** A throwaway database ("tykdr_drill_<random>") on the configured server, dropped by stop(). */
  async scratch({ component: c }) {
    const database = `tykdr_drill_${randomBytes(4).toString('hex')}`;
    const component: PostgresComponent = { ...c, restore: { ...c.restore, target: { ...c.restore.target, database } } };
    return {
      component,
      stop: async () => {
        try {
          const db = await connectPg(targetEndpoint(component), 'postgres');
          try {
            await db.query(`DROP DATABASE IF EXISTS "${database.replace(/"/g, '""')}" WITH (FORCE)`);
          } finally {
            await db.end();
          }
          return [];
        } catch (err) {
          return [`could not drop the drill database ${database}: ${(err as Error).message}`];
        }
      },
    };
  },
};
