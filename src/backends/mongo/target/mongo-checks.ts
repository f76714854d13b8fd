import { checksBy, type ChecksBy } from '../../../core/checks/registry.js';
import type { Db } from 'mongodb';
import type { MongoFacts } from '../facts.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { checkResult, guarded } from '../../../core/checks/result.js';
import { throwIfAborted } from '../../../core/util/abort.js';

/**
 * Checks that prove a MongoDB restore worked, against the manifest's facts. Each returns one CheckResult
 * and never throws (except on abort): a check that cannot run is failed with the reason.
 *
 * The expected document counts are the ones counted in the archive itself as it was written, so they are
 * exactly what mongorestore inserts: the check allows no difference. (The counts the driver estimated just
 * before the dump are in the manifest for reference only; on a busy database they differ.)
 */
export const MONGO_CHECKS = checksBy('database');
export type MongoCheckName = ChecksBy<'database'>;

export interface MongoCheckInput {
  /** The restored database on the target. */
  db: Db;
  facts: MongoFacts;
  signal?: AbortSignal;
}

/** The subset of listCollections this module reads. */
interface CollectionInfo {
  name: string;
  type?: string;
  options?: { capped?: boolean; size?: number; max?: number };
}

async function targetCollections(db: Db): Promise<Map<string, CollectionInfo>> {
  const infos = (await db.listCollections({}, { nameOnly: false, authorizedCollections: true }).toArray()) as CollectionInfo[];
  return new Map(infos.map((i) => [i.name, i]));
}

const list = (names: string[], max = 3) => (names.length <= max ? names.join('; ') : `${names.slice(0, max).join('; ')}; and ${names.length - max} more`);

/**
 * database-counts: every collection of the snapshot exists on the target with exactly the documents the
 * archive held (countDocuments, exact), capped collections are capped, and views exist. Excluded
 * collections are listed, not counted: the restore leaves them as they are.
 */
export function checkDatabaseCounts(input: MongoCheckInput): Promise<CheckResult> {
  const started = Date.now();
  const name = 'database-counts';
  return guarded(name, started, async () => {
    const { db, facts } = input;
    const target = await targetCollections(db);
    const collections: Record<string, Record<string, unknown>> = {};
    const problems: string[] = [];
    let expectedTotal = 0;
    let actualTotal = 0;
    for (const [coll, want] of Object.entries(facts.collections)) {
      throwIfAborted(input.signal);
      const found = target.get(coll);
      if (want.type === 'view') {
        collections[coll] = { type: 'view', exists: found?.type === 'view' };
        if (found?.type !== 'view') problems.push(`view ${coll} missing`);
        continue;
      }
      const evidence: Record<string, unknown> = { expected: want.documents };
      collections[coll] = evidence;
      expectedTotal += want.documents;
      if (!found) {
        evidence.actual = null;
        problems.push(`${coll} missing`);
        continue;
      }
      const actual = await db.collection(coll).countDocuments({});
      evidence.actual = actual;
      actualTotal += actual;
      if (actual !== want.documents) problems.push(`${coll}: ${actual} documents, the snapshot has ${want.documents}`);
      if (want.capped) {
        const o = found.options ?? {};
        evidence.capped = { expected: { size: want.size, max: want.max }, actual: o.capped ? { size: o.size, max: o.max } : false };
        if (o.capped !== true) problems.push(`${coll} was capped (size ${want.size ?? '?'}) in the snapshot but is not capped on the target`);
        else if (want.max !== undefined && o.max !== want.max) problems.push(`${coll} is capped with max ${o.max ?? 'unset'}, the snapshot has max ${want.max}`);
      }
    }
    const excludedOnTarget = [...target.keys()].filter((n) => facts.excluded.includes(n)).sort();
    const others = [...target.keys()].filter((n) => !(n in facts.collections) && !facts.excluded.includes(n) && !n.startsWith('system.')).sort();
    const n = Object.keys(facts.collections).length;
    const evidence = {
      database: db.databaseName,
      expected_documents: expectedTotal,
      actual_documents: actualTotal,
      collections,
      excluded: facts.excluded,
      excluded_present_on_target: excludedOnTarget,
      not_in_snapshot: others,
    };
    const excludedNote = facts.excluded.length ? `; ${facts.excluded.length} excluded (not restored): ${facts.excluded.join(', ')}` : '';
    if (problems.length) {
      return checkResult(name, 'failed', `${problems.length} of ${n} collections differ from the snapshot: ${list(problems)}`, evidence, started);
    }
    return checkResult(name, 'passed', `${n} collections, ${expectedTotal} documents, as in the snapshot${excludedNote}`, evidence, started);
  });
}

/** database-indexes: every index the snapshot recorded exists on the target, by name (per collection). */
export function checkDatabaseIndexes(input: MongoCheckInput): Promise<CheckResult> {
  const started = Date.now();
  const name = 'database-indexes';
  return guarded(name, started, async () => {
    const { db, facts } = input;
    const target = await targetCollections(db);
    const collections: Record<string, Record<string, unknown>> = {};
    const missing: string[] = [];
    let expected = 0;
    for (const [coll, want] of Object.entries(facts.collections)) {
      throwIfAborted(input.signal);
      if (want.type === 'view') continue;
      const names = want.indexes.map((i) => i.name);
      expected += names.length;
      const have = target.has(coll) ? new Set((await db.collection(coll).listIndexes().toArray()).map((i) => String(i.name))) : new Set<string>();
      const gone = names.filter((i) => !have.has(i));
      collections[coll] = { expected: names, missing: gone, ...(target.has(coll) ? {} : { collection_missing: true }) };
      missing.push(...gone.map((i) => `${coll}.${i}`));
    }
    const evidence = { database: db.databaseName, expected_indexes: expected, collections };
    if (missing.length) {
      return checkResult(name, 'failed', `${missing.length} of ${expected} indexes missing on the target: ${list(missing, 5)}`, evidence, started);
    }
    return checkResult(name, 'passed', `${expected} indexes on ${Object.keys(collections).length} collections, as in the snapshot`, evidence, started);
  });
}
