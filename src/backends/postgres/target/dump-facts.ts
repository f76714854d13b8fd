import { z } from 'zod';
import { integrityError } from '../../../core/errors.js';
import type { ManifestComponent } from '../../../core/manifest.js';

/** What a restore relies on in a `postgres` manifest entry's `source` (written by PostgresSource). */
const dumpFacts = z.object({
  address: z.string(),
  database: z.string(),
  server_version: z.string(),
  server_version_num: z.number().int().positive(),
  pg_dump_version: z.string(),
  encoding: z.string().optional(),
  tables: z.record(z.string(), z.number().int().nonnegative()),
  excluded_tables: z.array(z.string()).default([]),
  partitioned_tables: z.array(z.string()).default([]),
  indexes: z.record(z.string(), z.array(z.string())).default({}),
  roles: z.array(z.string()).default([]),
});

/** What a restore relies on in a `postgres-globals` entry's `source` (written by PostgresGlobalsSource). */
const globalsFacts = z.object({
  server_version: z.string(),
  server_version_num: z.number().int().positive(),
  roles: z.array(z.string()),
  tablespaces: z.array(z.string()).default([]),
});

export type DumpFacts = z.infer<typeof dumpFacts>;
export type GlobalsFacts = z.infer<typeof globalsFacts>;

function parse<T>(schema: z.ZodType<T>, entry: ManifestComponent, name: string): T {
  const r = schema.safeParse(entry.source);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw integrityError(
    `the manifest entry of ${name} (${entry.kind}) lacks what a restore needs: source.${issue?.path.join('.') ?? '?'} ${issue?.message ?? ''}`.trim(),
    'use a snapshot written by this version of tykdr, or restore by hand (docs/FORMAT.md)',
  );
}

export const readDumpFacts = (entry: ManifestComponent, name: string): DumpFacts => parse(dumpFacts, entry, name);
export const readGlobalsFacts = (entry: ManifestComponent, name: string): GlobalsFacts => parse(globalsFacts, entry, name);
