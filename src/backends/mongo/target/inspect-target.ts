import type { MongoComponent } from '../../../core/config/load.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import { connectMongo, endpoint, explainMongoError, serverFacts } from '../client.js';
import { readMongoFacts } from '../facts.js';
import { displayHosts } from '../uri.js';

export interface MongoTargetState {
  /** "mongo 10.0.0.5:27017/tyk_analytics (MongoDB 7.0.12)", for plans and reports; no credentials. */
  display: string;
  database: string;
  serverVersion: string;
  ferretdbVersion?: string;
  /** Collections of the snapshot that already exist on the target (the restore drops and recreates them). */
  overwritten: string[];
  /** Documents in those collections now. */
  documents: number;
}

/**
 * Looks at a restore target without changing it: which of the snapshot's collections it already holds
 * (`--drop` replaces them) and how many documents they have. For the restore preflight (confirmation of
 * overwriting live data) and dry runs. Rejects with targetError when the target cannot be reached.
 */
export async function inspectMongoTarget(c: MongoComponent, entry: ManifestComponent, signal?: AbortSignal): Promise<MongoTargetState> {
  const facts = readMongoFacts(entry, c.name);
  const ep = endpoint(c, 'target');
  const database = c.restore.database ?? c.database;
  const client = await connectMongo(ep, signal);
  try {
    const server = await serverFacts(client);
    const db = client.db(database);
    const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((i) => i.name));
    const overwritten = Object.keys(facts.collections).filter((n) => existing.has(n)).sort();
    let documents = 0;
    for (const n of overwritten) {
      if (facts.collections[n]!.type === 'view') continue;
      documents += await db.collection(n).estimatedDocumentCount();
    }
    const product = server.ferretdbVersion ? `FerretDB ${server.ferretdbVersion}` : `MongoDB ${server.version}`;
    return {
      display: `mongo ${displayHosts(ep.parsed)}/${database} (${product})`,
      database,
      serverVersion: server.version,
      ...(server.ferretdbVersion ? { ferretdbVersion: server.ferretdbVersion } : {}),
      overwritten,
      documents,
    };
  } catch (err) {
    throw explainMongoError(err, ep, `inspecting database "${database}"`);
  } finally {
    await client.close().catch(() => undefined);
  }
}
