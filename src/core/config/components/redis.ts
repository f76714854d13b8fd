import { z } from 'zod';
import { Secret } from '../../secret.js';
import { KEY_CLASSES } from '../../tyk/key-classes.js';
import { duration, hostPort, tier, tlsOptions, type ResolveContext } from '../common.js';

const redisTarget = z.strictObject({
  host: z.string().optional().describe('Restore into this host instead of the one backed up.'),
  port: z.number().int().min(1).max(65535).optional(),
  username: z.string().optional(),
  password: z.string().optional().describe('Use ${ENV_VAR}.'),
  tls: tlsOptions.optional(),
});

const redisRestore = z.strictObject({
  mode: z
    .enum(['live', 'rdb-file', 'aof-file'])
    .default('live')
    .describe(
      'live: copy keys into a running Redis (SET for strings where the target takes SET ... PXAT, RESTORE for the rest; works for every backup mode); rdb-file: stop Redis, place dump.rdb, start it ' +
        '(snapshots of mode rdb); aof-file: stop Redis, place the appendonlydir folder, start it (snapshots of mode aof).',
    ),
  target: redisTarget.optional().describe('Where to restore; defaults to the backed-up address (or the Sentinel master).'),
  classes: z
    .array(z.enum(KEY_CLASSES))
    .default(['must', 'should', 'other'])
    .describe('live mode: Tyk key classes to restore. Add "quota" to keep quota usage as of the snapshot.'),
  batchSize: z.number().int().min(1).max(100_000).default(1000).describe('live mode: keys per pipelined batch.'),
  load: z
    .enum(['restore', 'replication', 'auto'])
    .default('restore')
    .describe(
      'live mode, snapshots of mode rdb: how the keys get in. restore: one command per key (SET for a string, RESTORE for the rest). replication: the target, which must hold no key and have no maxmemory, ' +
        'loads the staged RDB as a replica of tykdr (REPLICAOF), at its own RDB load speed, then is made a master again (REPLICAOF NO ONE); ' +
        'it must reach tykdr at replicationAddress. auto: replication where it applies, else restore.',
    ),
  replicationAddress: z
    .string()
    .regex(/^[^\s:]+(:\d{1,5})?$/, 'host or host:port')
    .optional()
    .describe(
      "load replication: the address the target connects to (host, or host:port to listen on a fixed port). Default: this host's address " +
        'on its connection to the target, on a free port.',
    ),
  redisServer: z
    .string()
    .default('redis-server')
    .describe(
      'Binary of the scratch server (live restores of an AOF; the evidence of file-mode restores). With the default, tykdr ' +
        "picks a fitting redis-server/valkey-server from PATH or its .tools/bin when this one cannot load the snapshot or writes DUMP payloads the target refuses.",
    ),
  dataDir: z.string().optional().describe("rdb-file and aof-file modes: the target Redis's dir (CONFIG GET dir)."),
  dbfilename: z.string().default('dump.rdb').describe('rdb-file mode: its dbfilename.'),
  appendDirName: z
    .string()
    .regex(/^[^/]+$/, 'a folder name inside dataDir, without "/"')
    .optional()
    .describe("aof-file mode: the target's appenddirname; default: what CONFIG GET appenddirname answers, else the snapshot's."),
  stopCommand: z.string().optional().describe('rdb-file and aof-file modes: shell command that stops Redis, e.g. "systemctl stop redis-server".'),
  startCommand: z.string().optional().describe('rdb-file and aof-file modes: shell command that starts it.'),
  loadTimeout: duration.default('10m').describe('How long Redis may take to load the data.'),
  replicaCatchUpTimeout: duration.default('2m').describe('After a restore, wait this long for replicas to reach the master offset.'),
  sample: z.number().int().min(0).max(100_000).default(100).describe('Keys compared value by value with the snapshot after restore.'),
  ttlTolerance: duration.default('5s').describe('How far a restored TTL may drift from the snapshot.'),
});

const aofOptions = z.strictObject({
  dataDir: z
    .string()
    .optional()
    .describe("Redis's dir as this host sees it (it must be readable here); default: what CONFIG GET dir answers."),
  appendDirName: z
    .string()
    .regex(/^[^/]+$/, 'a folder name inside dataDir, without "/"')
    .optional()
    .describe('The AOF folder inside dataDir; default: what CONFIG GET appenddirname answers.'),
  rewriteWait: duration.default('10m').describe('How long to wait for a running AOF rewrite to finish before copying.'),
});

const keysOptions = z.strictObject({
  classes: z
    .array(z.enum(KEY_CLASSES))
    .min(1)
    .default(['must', 'should', 'quota', 'other'])
    .describe('Tyk key classes to take. Default: everything but ephemeral (rate limits, caches, locks), analytics (Pump would count it twice) and mdcb.'),
  databases: z
    .union([z.literal('all'), z.array(z.number().int().min(0)).min(1)])
    .default('all')
    .describe('Database indexes to take: "all" (every database INFO keyspace lists, as an RDB would hold) or a list such as [0].'),
  batchSize: z.number().int().min(1).max(100_000).default(1000).describe('Keys per SCAN page and per pipelined DUMP batch.'),
});

const MODE_OPTIONS = { aof: 'aof', keys: 'keys' } as const;

export const redisComponentSchema = z.strictObject({
  kind: z.literal('redis'),
  tier: tier.default('critical'),
  mode: z
    .enum(['rdb', 'aof', 'keys'])
    .default('rdb')
    .describe(
      'rdb: stream an RDB snapshot over the replication protocol (needs SYNC). aof: copy the AOF folder, or Redis 6\'s one AOF file (tykdr must run where ' +
        "Redis's data dir is readable). keys: SCAN + DUMP every key (managed Redis such as ElastiCache or MemoryDB, and Redis Cluster).",
    ),
  aof: aofOptions.optional().describe('mode aof: where the AOF folder is and how long to wait for a rewrite.'),
  keys: keysOptions.optional().describe('mode keys: which key classes and databases to take.'),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(1).max(65535).default(6379),
  username: z.string().optional().describe('ACL user; it needs +sync +replconf +ping +info +auth.'),
  password: z.string().optional().describe('Use ${ENV_VAR}.'),
  db: z.number().int().min(0).max(15).default(0).describe('Database index Tyk uses (for key checks; the RDB holds all).'),
  tls: tlsOptions.optional(),
  connectTimeout: duration.default('10s'),
  stallTimeout: duration
    .default('60s')
    .describe(
      'A transfer with this Redis that moves no byte for this long fails: the RDB stream of a backup (exit 3), the writes and reads of a restore (exit 6). Applies to restore.target too.',
    ),
  sentinel: z
    .strictObject({
      masterName: z.string().min(1).describe('The name the sentinels monitor, e.g. "mymaster".'),
      sentinels: z.array(hostPort).min(1),
      username: z.string().optional(),
      password: z.string().optional().describe('Password of the sentinels themselves, if any.'),
      fromReplica: z.boolean().default(false).describe('Take the snapshot from a healthy replica to spare the master.'),
    })
    .optional()
    .describe('Discover the master (or a replica) through Redis Sentinel; host/port are then ignored.'),
  restore: redisRestore.prefault({}).describe('How `tykdr restore` puts this Redis back.'),
}).superRefine((c, ctx) => {
  for (const [section, mode] of Object.entries(MODE_OPTIONS)) {
    if (c[section as keyof typeof MODE_OPTIONS] !== undefined && c.mode !== mode) {
      ctx.addIssue({ code: 'custom', path: [section], message: `only applies to mode: ${mode} (mode is ${c.mode}); remove it or set mode: ${mode}` });
    }
  }
});


export type RedisComponentConfig = z.infer<typeof redisComponentSchema>;
export type RedisAofOptions = z.infer<typeof aofOptions>;
export type RedisKeysOptions = z.infer<typeof keysOptions>;
export type RedisRestoreConfig = z.infer<typeof redisRestore>;
type RedisRestore = RedisComponentConfig['restore'];
export type RedisRestoreTarget = Omit<NonNullable<RedisRestore['target']>, 'password'> & { password?: Secret };
export type RedisComponent = Omit<RedisComponentConfig, 'password' | 'sentinel' | 'restore'> & {
  name: string;
  password?: Secret;
  sentinel?: Omit<NonNullable<RedisComponentConfig['sentinel']>, 'password'> & { password?: Secret };
  restore: Omit<RedisRestore, 'target'> & { target?: RedisRestoreTarget };
};

/** Wraps the secrets in `Secret` and resolves paths. */
export function resolveRedis(c: RedisComponentConfig, name: string, ctx: ResolveContext): RedisComponent {
  const { password, sentinel, restore, ...rest } = c;
  const { target, ...restoreRest } = restore;
  return {
    ...rest,
    // The mode's section with its defaults, present exactly when that mode is chosen.
    ...(rest.mode === 'aof' ? { aof: { ...(rest.aof ?? aofOptions.parse({}, { jitless: true })), dataDir: ctx.rel(rest.aof?.dataDir) } } : {}),
    ...(rest.mode === 'keys' ? { keys: rest.keys ?? keysOptions.parse({}, { jitless: true }) } : {}),
    name,
    restore: {
      ...restoreRest,
      dataDir: ctx.rel(restoreRest.dataDir),
      ...(target === undefined ? {} : { target: { ...target, password: target.password === undefined ? undefined : new Secret(target.password) } }),
    },
    ...(password === undefined ? {} : { password: new Secret(password) }),
    ...(sentinel === undefined
      ? {}
      : { sentinel: { ...sentinel, password: sentinel.password === undefined ? undefined : new Secret(sentinel.password) } }),
  };
}
