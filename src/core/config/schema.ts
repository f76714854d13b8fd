import { z } from 'zod';
import { parseDuration } from '../duration.js';

/**
 * The tykdr.yaml schema. Strict everywhere: an unknown key is an error, not a silent no-op.
 * Secret-bearing fields are plain strings here; `load.ts` wraps them in `Secret` after validation
 * (the JSON Schema published for editors is generated from this file).
 */

const duration = z
  .string()
  .refine((s) => parseDuration(s) !== null, { message: 'expected a duration such as 90s, 15m, 1h or 7d' });

export const TIER_NAMES = ['critical', 'important', 'standard', 'development'] as const;
export type TierName = (typeof TIER_NAMES)[number];

/** Recovery objectives per tier, from Tyk's DR guidance (shared/TYK-NOTES.md). */
export const DEFAULT_TIERS: Record<TierName, { rto: string; rpo: string }> = {
  critical: { rto: '15m', rpo: '5m' },
  important: { rto: '1h', rpo: '15m' },
  standard: { rto: '4h', rpo: '1h' },
  development: { rto: '24h', rpo: '24h' },
};

const objective = z.strictObject({
  rto: duration.describe('Recovery time objective: longest acceptable time to restore.'),
  rpo: duration.describe('Recovery point objective: most data (as time) that may be lost.'),
});

const tier = z.enum(TIER_NAMES).describe('Recovery tier; sets the RTO/RPO objectives (see tiers).');

const localStore = z.strictObject({
  kind: z.literal('local'),
  path: z.string().min(1).describe('Folder that holds the snapshots; created if missing.'),
});

const s3Store = z.strictObject({
  kind: z.literal('s3'),
  bucket: z.string().min(3).describe('Bucket name; it must already exist.'),
  prefix: z.string().default('').describe('Key prefix for every object, e.g. "tyk/prod/".'),
  region: z.string().default('us-east-1'),
  endpoint: z.string().url().optional().describe('For S3-compatible services (MinIO, Ceph, R2).'),
  forcePathStyle: z.boolean().default(false).describe('Path-style addressing; needed by most S3-compatible services.'),
  accessKeyId: z.string().optional().describe('Leave unset to use the standard AWS credential chain.'),
  secretAccessKey: z.string().optional().describe('Use ${ENV_VAR}; never write the key in the file.'),
  sessionToken: z.string().optional(),
  serverSideEncryption: z.enum(['AES256', 'aws:kms']).optional().describe('SSE-S3 (AES256) or SSE-KMS.'),
  kmsKeyId: z.string().optional().describe('KMS key for aws:kms.'),
  storageClass: z
    .enum(['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'REDUCED_REDUNDANCY'])
    .optional(),
  partSizeMiB: z.number().int().min(5).max(512).default(16).describe('Multipart part size; memory use is about 4 parts.'),
});

const passphraseSource = z
  .strictObject({
    env: z.string().optional().describe('Name of an environment variable holding the passphrase.'),
    file: z.string().optional().describe('File whose first line is the passphrase.'),
  })
  .refine((p) => (p.env === undefined) !== (p.file === undefined), { message: 'set exactly one of env or file' });

const encryption = z.strictObject({
  recipients: z.array(z.string()).default([]).describe('age X25519 recipients (age1...). Only public keys are needed to back up.'),
  recipientsFile: z.string().optional().describe('File with one age recipient per line (# comments allowed).'),
  identityFile: z.string().optional().describe('age identity file (AGE-SECRET-KEY-1...), needed only to restore and verify.'),
  passphrase: passphraseSource.optional().describe('Encrypt with a passphrase (scrypt) instead of recipients.'),
});

const compression = z.strictObject({
  algorithm: z.enum(['zstd', 'gzip']).default('zstd'),
  level: z.number().int().min(1).max(19).default(3).describe('zstd 1-19 (3 is a good default), gzip 1-9.'),
});

const tlsOptions = z.strictObject({
  enabled: z.boolean().default(true),
  ca: z.string().optional().describe('CA bundle file (PEM).'),
  cert: z.string().optional().describe('Client certificate file (PEM), for mutual TLS.'),
  key: z.string().optional().describe('Client key file (PEM).'),
  servername: z.string().optional(),
  insecureSkipVerify: z.boolean().default(false).describe('Do not verify the server certificate (testing only).'),
});

const hostPort = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });

const redisTarget = z.strictObject({
  host: z.string().optional().describe('Restore into this host instead of the one backed up.'),
  port: z.number().int().min(1).max(65535).optional(),
  username: z.string().optional(),
  password: z.string().optional().describe('Use ${ENV_VAR}.'),
  tls: tlsOptions.optional(),
});

const redisRestore = z.strictObject({
  mode: z
    .enum(['live', 'rdb-file'])
    .default('live')
    .describe('live: copy keys into a running Redis (DUMP/RESTORE); rdb-file: stop Redis, place dump.rdb, start it.'),
  target: redisTarget.optional().describe('Where to restore; defaults to the backed-up address (or the Sentinel master).'),
  classes: z
    .array(z.enum(['must', 'should', 'quota', 'ephemeral', 'analytics', 'mdcb', 'other']))
    .default(['must', 'should', 'other'])
    .describe('live mode: Tyk key classes to restore. Add "quota" to keep quota usage as of the snapshot.'),
  batchSize: z.number().int().min(1).max(100_000).default(1000).describe('live mode: keys per pipelined batch.'),
  redisServer: z.string().default('redis-server').describe('live mode: redis-server binary for the scratch server.'),
  dataDir: z.string().optional().describe("rdb-file mode: the target Redis's dir (CONFIG GET dir)."),
  dbfilename: z.string().default('dump.rdb').describe('rdb-file mode: its dbfilename.'),
  stopCommand: z.string().optional().describe('rdb-file mode: shell command that stops Redis, e.g. "systemctl stop redis-server".'),
  startCommand: z.string().optional().describe('rdb-file mode: shell command that starts it.'),
  loadTimeout: duration.default('10m').describe('How long Redis may take to load the data.'),
  replicaCatchUpTimeout: duration.default('2m').describe('After a restore, wait this long for replicas to reach the master offset.'),
  sample: z.number().int().min(0).max(100_000).default(100).describe('Keys compared value by value with the snapshot after restore.'),
  ttlTolerance: duration.default('5s').describe('How far a restored TTL may drift from the snapshot.'),
});

const redisComponent = z.strictObject({
  kind: z.literal('redis'),
  tier: tier.default('critical'),
  mode: z.enum(['rdb']).default('rdb').describe('rdb: stream an RDB snapshot over the replication protocol.'),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(1).max(65535).default(6379),
  username: z.string().optional().describe('ACL user; it needs +sync +replconf +ping +info +auth.'),
  password: z.string().optional().describe('Use ${ENV_VAR}.'),
  db: z.number().int().min(0).max(15).default(0).describe('Database index Tyk uses (for key checks; the RDB holds all).'),
  tls: tlsOptions.optional(),
  connectTimeout: duration.default('10s'),
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
});

const filesComponent = z.strictObject({
  kind: z.literal('files'),
  tier: tier.default('important'),
  roots: z.array(z.string().min(1)).min(1).describe('Folders to archive, e.g. /opt/tyk-gateway.'),
  include: z
    .array(z.string())
    .default(['**'])
    .describe('Globs relative to each root: tyk.conf, apps/**, policies/**, templates/**, middleware/**, certs/**.'),
  exclude: z.array(z.string()).default([]).describe('Globs to leave out, e.g. "**/*.log".'),
  tykConf: z
    .string()
    .default('tyk.conf')
    .describe('Path (relative to a root) of the gateway config whose hash_keys and secret fingerprint are recorded.'),
  role: z
    .enum(['gateway', 'dashboard', 'pump', 'other'])
    .default('gateway')
    .describe('Which plan step restores these files: gateway files before the gateway restarts, dashboard files before the dashboard.'),
  restore: z
    .strictObject({
      to: z.string().optional().describe('Extract under this folder instead of into the original roots (e.g. a standby host\'s layout).'),
    })
    .prefault({}),
});

const command = z.string().min(1).describe('A shell command (run with /bin/sh -c).');

const uptimeCheck = z.union([
  z.strictObject({ url: z.string().url() }),
  z.strictObject({
    url: z.string().url(),
    method: z.string().default('GET'),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.string().optional().describe('Base64-encoded request body.'),
  }),
]);

const gateway = z.strictObject({
  url: z.string().url().default('http://127.0.0.1:8080').describe('Base URL of the gateway (its listen address).'),
  restartCommand: command.optional().describe('Restarts or reloads the gateway after its files are restored.'),
  readyPath: z.string().default('/ready'),
  helloPath: z.string().default('/hello').describe('health_check_endpoint_name.'),
  timeout: duration.default('2m').describe('How long to wait for /ready and /hello after the restart.'),
  keyProbe: z
    .strictObject({
      path: z.string().describe('A path of an API protected by keys, e.g. /orders/.'),
      key: z.string().describe('A canary key that must work after the restore. Use ${ENV_VAR}.'),
      expectStatus: z.number().int().default(200),
    })
    .optional()
    .describe('After the restore, the canary key must be proxied and a bogus key refused (403).'),
  uptimeTests: z
    .strictObject({
      failureTriggerSampleSize: z.number().int().min(1).max(20).default(3),
      checkList: z.array(uptimeCheck).min(1),
    })
    .optional()
    .describe('Upstream checks in the format of Tyk uptime tests.'),
});

const dashboard = z.strictObject({
  url: z.string().url().default('http://127.0.0.1:3000'),
  healthPath: z.string().default('/api/health'),
  restartCommand: command.optional(),
  timeout: duration.default('2m'),
});

export const componentSchema = z.discriminatedUnion('kind', [redisComponent, filesComponent]);

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  version: z.literal(1).default(1),
  store: z.discriminatedUnion('kind', [localStore, s3Store]),
  encryption,
  compression: compression.default({ algorithm: 'zstd', level: 3 }),
  tiers: z
    .strictObject(Object.fromEntries(TIER_NAMES.map((t) => [t, objective.optional()])) as Record<TierName, z.ZodOptional<typeof objective>>)
    .default({})
    .describe('Override the default RTO/RPO per tier.'),
  parallelism: z.number().int().min(1).max(8).default(2).describe('Components backed up at once.'),
  gateway: gateway.optional().describe('The Tyk Gateway that restores are verified against.'),
  dashboard: dashboard.optional().describe('The Tyk Dashboard, when there is one.'),
  restore: z
    .strictObject({
      stagingDir: z.string().optional().describe('Where artifacts are verified and decrypted before use (needs room for the largest one). Default: the system temp folder.'),
      reportDir: z.string().default('./tykdr-reports').describe('Where restore reports are written (they are also stored next to the snapshot).'),
    })
    .prefault({}),
  components: z
    .record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'component names are lowercase letters, digits and dashes'), componentSchema)
    .refine((c) => Object.keys(c).length > 0, { message: 'configure at least one component' }),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RedisComponentConfig = z.infer<typeof redisComponent>;
export type FilesComponentConfig = z.infer<typeof filesComponent>;
export type ComponentConfig = z.infer<typeof componentSchema>;
export type StoreConfig = RawConfig['store'];
export type S3StoreConfig = z.infer<typeof s3Store>;
export type EncryptionConfig = z.infer<typeof encryption>;
export type CompressionConfig = z.infer<typeof compression>;
export type GatewayConfig = z.infer<typeof gateway>;
export type DashboardConfig = z.infer<typeof dashboard>;
export type UptimeCheck = z.infer<typeof uptimeCheck>;
export type RedisRestoreConfig = z.infer<typeof redisRestore>;
