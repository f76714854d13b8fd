import { z } from 'zod';
import { Secret } from '../../secret.js';
import { duration, tier, type ResolveContext } from '../common.js';

/** Analytics collections left out by default (shared/TYK-NOTES.md). Globs: * matches any suffix. */
export const DEFAULT_MONGO_EXCLUDES = ['tyk_analytics', 'z_tyk_analyticz*', 'tyk_analytics_aggregates', 'tyk_uptime_analytics'];

const URI_MESSAGE = 'a MongoDB connection string starts with mongodb:// or mongodb+srv://';
const isMongoUri = (s: string) => /^mongodb(\+srv)?:\/\/./.test(s.trim());

export const mongoComponentSchema = z.strictObject({
  kind: z.literal('mongo'),
  tier: tier.default('important'),
  uri: z
    .string()
    .refine(isMongoUri, { message: URI_MESSAGE })
    .default('mongodb://127.0.0.1:27017')
    .describe('Connection string; it may hold credentials: use ${ENV_VAR}. Never passed on a command line.'),
  database: z.string().min(1).default('tyk_analytics'),
  excludeCollections: z
    .array(
      z.string().regex(/^[^*]+\*?$/, 'mongodump can leave out a collection by name or by prefix: write a name, or a prefix followed by one * at the end'),
    )
    .default(DEFAULT_MONGO_EXCLUDES)
    .describe('Collections left out (a name, or a prefix ending in *).'),
  binDir: z.string().optional().describe('Folder with mongodump and mongorestore (default: PATH).'),
  parallelCollections: z
    .number()
    .int()
    .min(1)
    .max(16)
    .default(1)
    .describe(
      'Collections mongodump reads at once. mongorestore restores an archive with at least as many at once, which FerretDB cannot take: keep 1 unless the database is large and no restore goes to FerretDB.',
    ),
  connectTimeout: duration.default('10s').describe('How long to wait for MongoDB to answer before giving up.'),
  restore: z
    .strictObject({
      // Empty when its ${VAR} is unset during a backup, which does not need it.
      uri: z
        .string()
        .refine((s) => s === '' || isMongoUri(s), { message: URI_MESSAGE })
        .optional().describe('Restore into this deployment instead (use ${ENV_VAR}).'),
      database: z.string().min(1).optional().describe('Restore into this database instead (the default is `database`).'),
      ferretdb: z
        .boolean()
        .default(false)
        .describe(
          'Target is FerretDB: restore without index options it refuses, one collection at a time, and create indexes through the driver. Detected automatically from buildInfo; set it to force.',
        ),
    })
    .prefault({}),
});

export type MongoComponentConfig = z.infer<typeof mongoComponentSchema>;
export type MongoComponent = Omit<MongoComponentConfig, 'uri' | 'restore'> & {
  name: string;
  /** The whole URI is secret: it usually carries the password. */
  uri: Secret;
  restore: Omit<MongoComponentConfig['restore'], 'uri'> & { uri?: Secret };
};

export function resolveMongo(c: MongoComponentConfig, name: string, ctx: ResolveContext): MongoComponent {
  return {
    ...c,
    name,
    binDir: ctx.rel(c.binDir),
    uri: new Secret(c.uri),
    // An unset ${VAR} reads as empty where the restore side is not needed (backup): treat it as not set.
    restore: { ...c.restore, uri: c.restore.uri ? new Secret(c.restore.uri) : undefined },
  };
}
