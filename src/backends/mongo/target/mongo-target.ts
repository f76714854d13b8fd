import { randomBytes } from 'node:crypto';
import type { MongoComponent } from '../../../core/config/load.js';
import type { Target } from '../../../core/interfaces/target.js';
import { checksBy } from '../../../core/checks/registry.js';
import { inspectMongoTarget } from './inspect-target.js';
import { mongoDriver } from '../driver.js';
import { restoreMongo } from './restore-mongo.js';

/** MongoDB (the Dashboard's database, or FerretDB / DocumentDB speaking its protocol): mongorestore of the archive. */
export const mongoTarget: Target<MongoComponent> = {
  kind: 'mongo',
  artifactKinds: ['mongo'],
  checks: checksBy('database'),
  role: () => 'database',
  roleOf: () => 'database',

  async assess({ name, component, entry, signal }) {
    const t = await inspectMongoTarget(component, entry, signal);
    return [
      {
        component: name,
        target: `mongo ${t.display}/${t.database}`,
        liveData: t.overwritten.length > 0 ? `${t.overwritten.length} collections replaced, ${t.documents} documents` : null,
      },
    ];
  },

  async restore(i) {
    i.note(`  restoring ${i.name} (${i.entry.kind})`);
    return restoreMongo({ component: i.component, manifest: i.entry, stagedFile: i.stagedFile, workDir: i.workDir, checks: [...i.checks], signal: i.signal });
  },

  /** A throwaway database ("tykdr_drill_<random>") on the configured server, dropped by stop(). */
  async scratch({ component: c }) {
    const database = `tykdr_drill_${randomBytes(4).toString('hex')}`;
    const component: MongoComponent = { ...c, restore: { ...c.restore, database } };
    return {
      component,
      stop: async () => {
        const client = new (mongoDriver().MongoClient)((c.restore.uri ?? c.uri).reveal(), { serverSelectionTimeoutMS: 10_000 });
        try {
          await client.connect();
          await client.db(database).dropDatabase();
          return [];
        } catch (err) {
          return [`could not drop the drill database ${database}: ${(err as Error).message}`];
        } finally {
          await client.close();
        }
      },
    };
  },
};
