import { z } from 'zod';
import { DEFAULT_TIERS, TIER_NAMES, duration, objective, type TierName } from './common.js';
import { componentSchema } from './components/index.js';
import { drillSchema, healthSchema, leaderSchema, notificationsSchema, objectLockSchema, retentionSchema, scheduleSchema } from './operations.js';
import { evidenceSchema, signingSchema } from './signing.js';

export { DEFAULT_TIERS, TIER_NAMES, type TierName };

/**
 * The tykdr.yaml schema. Strict everywhere: an unknown key is an error, not a silent no-op.
 * Secret-bearing fields are plain strings here; `load.ts` wraps them in `Secret` after validation
 * (the JSON Schema published for editors is generated from this file).
 */

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
  partSizeMiB: z
    .number()
    .int()
    .min(5)
    .max(512)
    .default(8)
    .describe(
      'Size of the first 1,000 parts of a multipart upload; it doubles every 1,000 parts (10,000 parts of 8 MiB and up hold 8.6 TB). ' +
        'Memory is about (uploadConcurrency + 1) parts. Also the size of the ranges a large object is downloaded in (downloadConcurrency).',
    ),
  uploadConcurrency: z.number().int().min(1).max(16).default(2).describe('Parts uploaded at once; more is faster on high-latency links and on stores that serve each connection at a limited rate (S3), and costs a part of memory each.'),
  downloadConcurrency: z
    .number()
    .int()
    .min(1)
    .max(16)
    .default(4)
    .describe(
      'Ranges of an object larger than partSizeMiB downloaded at once (restore, verify, copy): a store serves each connection at a limited rate, so several multiply it. ' +
        'Ranges are partSizeMiB (at most 16 MiB); memory is at most this many ranges. 1 reads every object on one connection.',
    ),
  objectLock: objectLockSchema.optional(),
  connectTimeout: duration.default('10s').describe('Longest wait for a connection (TCP and TLS) to the endpoint; a timed-out attempt is retried.'),
  stallTimeout: duration
    .default('60s')
    .describe(
      'An operation (upload, download, listing...) fails when no byte moves for this long while it waits on the store; shorter stalls are waited out and reported. A connection idle for twice this long is closed.',
    ),
  maxAttempts: z
    .number()
    .int()
    .min(1)
    .max(20)
    .default(5)
    .describe('Attempts per request, the first included: connection resets, timeouts, 5xx and throttling are retried with exponential backoff.'),
});

/** What a copy store adds to a store section: whether the daemon copies new snapshots to it, and its own retention. */
const copyOptions = {
  auto: z.boolean().default(true).describe('The daemon copies every new snapshot here after the backup, then checks the copy.'),
  retention: retentionSchema.optional().describe('Retention for this store (`tykdr prune --store NAME`); default: the top-level retention.'),
};

const copyStore = z.discriminatedUnion('kind', [localStore.extend(copyOptions), s3Store.extend(copyOptions)]);

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


export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  version: z.literal(1).default(1),
  store: z.discriminatedUnion('kind', [localStore, s3Store]),
  copies: z
    .record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'store names are lowercase letters, digits and dashes').refine((n) => n !== 'primary', { message: '"primary" names the store section' }), copyStore)
    .default({})
    .describe('Off-site copies: more stores, by name (e.g. another region). `tykdr copy` and the daemon copy snapshots there; restore and drill fall back to them when the store is unreachable.'),
  encryption,
  compression: compression.default({ algorithm: 'zstd', level: 3 }),
  tiers: z
    .strictObject(Object.fromEntries(TIER_NAMES.map((t) => [t, objective.optional()])) as Record<TierName, z.ZodOptional<typeof objective>>)
    .default({})
    .describe('Override the default RTO/RPO per tier.'),
  parallelism: z.number().int().min(1).max(8).default(2).describe('Components backed up at once.'),
  schedule: scheduleSchema,
  retention: retentionSchema,
  notifications: notificationsSchema,
  health: healthSchema,
  leader: leaderSchema,
  drill: drillSchema,
  signing: signingSchema.describe('Ed25519 signatures on manifests and reports (see docs/FORMAT.md).'),
  evidence: evidenceSchema,
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
export type StoreConfig = RawConfig['store'];
export type S3StoreConfig = z.infer<typeof s3Store>;
export type CopyStoreConfig = z.infer<typeof copyStore>;
export type EncryptionConfig = z.infer<typeof encryption>;
export type CompressionConfig = z.infer<typeof compression>;
export type GatewayConfig = z.infer<typeof gateway>;
export type DashboardConfig = z.infer<typeof dashboard>;
export type UptimeCheck = z.infer<typeof uptimeCheck>;

