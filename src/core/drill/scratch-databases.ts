import { randomBytes } from 'node:crypto';
import type { Component, MongoComponent, PostgresComponent } from '../config/load.js';
import type { Manifest } from '../manifest.js';

interface CreatedDatabase {
  kind: 'postgres' | 'mongo';
  component: Component;
  database: string;
}

/**
 * Points every database component a drill restores at a throwaway database on its configured server
 * ("tykdr_drill_<random>"), never at the production database. teardownDatabases drops them afterwards.
 */
export async function useScratchDatabases(
  members: string[],
  manifest: Manifest,
  components: Record<string, Component>,
  _signal?: AbortSignal,
): Promise<{ components: Record<string, Component>; created: CreatedDatabase[] }> {
  const out = { ...components };
  const created: CreatedDatabase[] = [];
  const names = new Set(members.map((m) => manifest.components[m]?.config_component ?? m));
  for (const name of names) {
    const c = out[name];
    const database = `tykdr_drill_${randomBytes(4).toString('hex')}`;
    if (c?.kind === 'postgres') {
      const pg = c as PostgresComponent;
      out[name] = { ...pg, restore: { ...pg.restore, target: { ...pg.restore.target, database } } };
      created.push({ kind: 'postgres', component: out[name]!, database });
    } else if (c?.kind === 'mongo') {
      const mongo = c as MongoComponent;
      out[name] = { ...mongo, restore: { ...mongo.restore, database } };
      created.push({ kind: 'mongo', component: out[name]!, database });
    }
  }
  return { components: out, created };
}

/** Drops the drill's throwaway databases. Best effort: a failure is returned, not thrown. */
export async function teardownDatabases(created: CreatedDatabase[]): Promise<string[]> {
  const problems: string[] = [];
  for (const d of created) {
    try {
      if (d.kind === 'postgres') await dropPostgres(d.component as PostgresComponent, d.database);
      else await dropMongo(d.component as MongoComponent, d.database);
    } catch (err) {
      problems.push(`could not drop the drill database ${d.database}: ${(err as Error).message}`);
    }
  }
  return problems;
}

async function dropPostgres(c: PostgresComponent, database: string): Promise<void> {
  const { default: pg } = await import('pg');
  const t = c.restore.target ?? {};
  const client = new pg.Client({
    host: t.host ?? c.host,
    port: t.port ?? c.port,
    user: t.username ?? c.username,
    password: (t.password ?? c.password)?.reveal(),
    database: 'postgres',
  });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${database.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

async function dropMongo(c: MongoComponent, database: string): Promise<void> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient((c.restore.uri ?? c.uri).reveal(), { serverSelectionTimeoutMS: 10_000 });
  try {
    await client.connect();
    await client.db(database).dropDatabase();
  } finally {
    await client.close();
  }
}
