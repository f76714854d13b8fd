import { z } from 'zod';
import { Secret } from '../../secret.js';
import { duration, tier, type ResolveContext } from '../common.js';

/** Analytics tables left out by default: huge, optional, rebuilt by Pump (shared/TYK-NOTES.md). */
export const DEFAULT_PG_EXCLUDES = [
  'tyk_analytics',
  'tyk_analytics_[0-9]*',
  'tyk_aggregated',
  'tyk_uptime_analytics',
  'tyk_graph_analytics',
  'tyk_graph_analytics_[0-9]*',
  'tyk_graph_aggregated',
];

const pgConnection = {
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z.string().default('tyk_analytics'),
  username: z.string().default('postgres'),
  password: z.string().optional().describe('Use ${ENV_VAR}.'),
  sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).default('prefer'),
  sslrootcert: z.string().optional().describe('CA file for verify-ca / verify-full.'),
};

export const postgresComponentSchema = z.strictObject({
  kind: z.literal('postgres'),
  tier: tier.default('important'),
  ...pgConnection,
  binDir: z.string().optional().describe('Folder with pg_dump/pg_restore/pg_dumpall matching the server version (default: PATH).'),
  excludeTables: z
    .array(z.string())
    .default(DEFAULT_PG_EXCLUDES)
    .describe('Table patterns (pg_dump --exclude-table-data syntax) whose data is left out; the schema is kept.'),
  globals: z.boolean().default(false).describe('Also back up roles and tablespaces (pg_dumpall --globals-only, needs a superuser) as a second artifact.'),
  stallTimeout: duration
    .default('60s')
    .describe(
      'A restore fails (exit 6) when pg_restore moves no byte and prints nothing for this long while the server is not working for it (a long CREATE INDEX is work, a connection that stopped answering is not).',
    ),
  lockTimeout: duration
    .default('1m')
    .describe('How long the backup waits for its ACCESS SHARE table locks (a running ALTER TABLE or VACUUM FULL holds them off).'),
  restore: z
    .strictObject({
      target: z
        .strictObject({
          host: z.string().optional(),
          port: z.number().int().min(1).max(65535).optional(),
          database: z.string().optional(),
          username: z.string().optional(),
          password: z.string().optional().describe('Use ${ENV_VAR}.'),
          sslmode: pgConnection.sslmode.unwrap().optional(),
          sslrootcert: z.string().optional(),
        })
        .optional()
        .describe('Where to restore, field by field over the connection above (e.g. only database: to restore beside the original).'),
      jobs: z
        .number()
        .int()
        .min(1)
        .max(16)
        .default(1)
        .describe(
          'pg_restore --jobs. Above 1 the archive is decompressed into a file first, with the data offsets a streamed dump lacks written in (so workers seek to their table): raise it for databases with several large tables and a target server with idle cores.',
        ),
      owners: z
        .enum(['auto', 'keep', 'skip'])
        .default('auto')
        .describe(
          'Object owners and GRANTs: keep (refuse when a role the dump names is missing on the target), skip (pg_restore --no-owner --no-privileges: the restore user owns everything), auto (keep when every role exists, else skip with a warning).',
        ),
    })
    .prefault({}),
});

export type PostgresComponentConfig = z.infer<typeof postgresComponentSchema>;
export type PostgresComponent = Omit<PostgresComponentConfig, 'password' | 'restore'> & {
  name: string;
  password?: Secret;
  restore: Omit<PostgresComponentConfig['restore'], 'target'> & {
    target?: Omit<NonNullable<PostgresComponentConfig['restore']['target']>, 'password'> & { password?: Secret };
  };
};

export function resolvePostgres(c: PostgresComponentConfig, name: string, ctx: ResolveContext): PostgresComponent {
  const { password, restore, ...rest } = c;
  const target = restore.target;
  return {
    ...rest,
    name,
    binDir: ctx.rel(rest.binDir),
    sslrootcert: ctx.rel(rest.sslrootcert),
    ...(password === undefined ? {} : { password: new Secret(password) }),
    restore: {
      ...restore,
      target:
        target === undefined
          ? undefined
          : { ...target, sslrootcert: ctx.rel(target.sslrootcert), password: typeof target.password === 'string' ? new Secret(target.password) : undefined },
    },
  } as PostgresComponent;
}
