import { z } from 'zod';
import { duration, tlsOptions } from './common.js';

/** Config for unattended operation: `tykdr daemon`, `tykdr prune`, `tykdr verify`, `tykdr drill`. */

const cron = z.string().min(1).describe('A cron expression (node-cron; 5 fields, or 6 with seconds first).');

export const scheduleSchema = z
  .strictObject({
    backups: z
      .record(z.string(), cron)
      .default({})
      .describe('Backup schedule per component name ("*" for all). Default: derived from each tier\'s RPO (the interval never exceeds it).'),
    prune: cron.default('17 * * * *').describe('When retention runs (default hourly).'),
    verify: z
      .strictObject({ cron: cron.default('40 3 * * *'), samplePercent: z.number().min(0).max(100).default(10) })
      .prefault({})
      .describe('Integrity checks of stored snapshots (default daily, a 10% random sample).'),
    drills: z
      .strictObject({
        components: cron.default('0 4 1 * *').describe('Component drills (one plan per component): monthly by default, as Tyk\'s DR guidance suggests.'),
        full: cron.default('0 5 1 1,4,7,10 *').describe('Full simulation (plan full): quarterly by default.'),
      })
      .prefault({}),
  })
  .prefault({});

export const retentionSchema = z
  .strictObject({
    keepLast: z.number().int().min(0).default(3),
    hourly: z.number().int().min(0).default(24),
    daily: z.number().int().min(0).default(7),
    weekly: z.number().int().min(0).default(4),
    monthly: z.number().int().min(0).default(12),
    yearly: z.number().int().min(0).default(0),
    keepWithin: duration.optional().describe('Keep every complete snapshot newer than this.'),
    incompleteGrace: duration.default('1d').describe('Incomplete snapshots older than this are removed.'),
  })
  .prefault({});

const webhook = z.strictObject({
  url: z.string().url(),
  events: z
    .array(z.enum(['backup_failed', 'rpo_breached', 'drill_failed', 'drill_passed']))
    .default(['backup_failed', 'rpo_breached', 'drill_failed', 'drill_passed']),
  headers: z.record(z.string(), z.string()).default({}).describe('e.g. Authorization: ${WEBHOOK_TOKEN}.'),
  retries: z.number().int().min(0).max(10).default(5),
  timeout: duration.default('10s'),
});

export const notificationsSchema = z.strictObject({ webhooks: z.array(webhook).default([]) }).prefault({});

export const healthSchema = z
  .strictObject({
    listen: z.string().default('127.0.0.1:9187').describe('host:port for /hello and /metrics (localhost by default).'),
    token: z.string().optional().describe('When set, requests need "Authorization: Bearer <token>". Use ${ENV_VAR}.'),
  })
  .prefault({});

export const leaderSchema = z
  .strictObject({
    host: z.string().optional().describe('Redis for the leader lock; default: the first redis component.'),
    port: z.number().int().min(1).max(65535).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    db: z.number().int().min(0).max(15).optional(),
    tls: tlsOptions.optional(),
    key: z.string().default('tykdr:daemon:leader'),
    ttl: duration.default('15s').describe('A dead leader is replaced within this time.'),
  })
  .prefault({});

export const drillSchema = z
  .strictObject({
    redisServer: z.string().default('redis-server').describe('Binary for the scratch Redis a drill restores into; the default is replaced by a fitting server on PATH or in the tool cache when it cannot load the snapshot (docs/RESTORE.md, Drills).'),
    reportDir: z.string().optional().describe('Default: restore.reportDir.'),
    gateway: z
      .strictObject({
        binary: z.string().min(1).describe("The operator's Tyk Gateway binary, e.g. /opt/tyk-gateway/tyk; started as `BINARY --conf FILE`."),
        templates: z.string().optional().describe("Folder of the gateway's templates (default: the snapshot's templates/, else templates/ beside the binary)."),
        startTimeout: duration.default('60s').describe('How long the drill gateway may take to listen on its port.'),
      })
      .optional()
      .describe("Drills start this Tyk Gateway on a free port with the snapshot's tyk.conf pointed at the scratch Redis and the restored apps/ and policies/, then run the gateway checks against it. Unset: the gateway is not proven."),
  })
  .prefault({});

export const objectLockSchema = z
  .strictObject({
    mode: z.enum(['GOVERNANCE', 'COMPLIANCE']).default('GOVERNANCE'),
    days: z.number().int().min(1).max(36500).describe('Retention set on every object at upload.'),
  })
  .describe('S3 Object Lock: the bucket must have been created with Object Lock enabled.');
