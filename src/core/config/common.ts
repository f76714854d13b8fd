import { z } from 'zod';
import { parseDuration } from '../duration.js';

/** Schema pieces shared by the config sections and the component kinds. */

export const duration = z
  .string()
  .refine((s) => parseDuration(s) !== null, { message: 'expected a duration such as 90s, 15m, 1h or 7d' })
  .refine((s) => (parseDuration(s) ?? 0) <= MAX_CONFIG_DURATION_MS, { message: 'longer than 100 years (36500d): a typo?' });

/** No objective, timeout or retention in a config is longer than this. */
const MAX_CONFIG_DURATION_MS = 36_500 * 86_400_000;

export const TIER_NAMES = ['critical', 'important', 'standard', 'development'] as const;
export type TierName = (typeof TIER_NAMES)[number];

/** Recovery objectives per tier, from Tyk's DR guidance (shared/TYK-NOTES.md). */
export const DEFAULT_TIERS: Record<TierName, { rto: string; rpo: string }> = {
  critical: { rto: '15m', rpo: '5m' },
  important: { rto: '1h', rpo: '15m' },
  standard: { rto: '4h', rpo: '1h' },
  development: { rto: '24h', rpo: '24h' },
};

export const objective = z.strictObject({
  rto: duration.describe('Recovery time objective: longest acceptable time to restore.'),
  rpo: duration.describe('Recovery point objective: most data (as time) that may be lost.'),
});

export const tier = z.enum(TIER_NAMES).describe('Recovery tier; sets the RTO/RPO objectives (see tiers).');

export const tlsOptions = z.strictObject({
  enabled: z.boolean().default(true),
  ca: z.string().optional().describe('CA bundle file (PEM).'),
  cert: z.string().optional().describe('Client certificate file (PEM), for mutual TLS.'),
  key: z.string().optional().describe('Client key file (PEM).'),
  servername: z.string().optional(),
  insecureSkipVerify: z.boolean().default(false).describe('Do not verify the server certificate (testing only).'),
});

export const hostPort = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });


/** Resolves paths written in tykdr.yaml against the file's folder. */
export interface ResolveContext {
  rel(p: string | undefined): string | undefined;
  relAll(ps: string[]): string[];
}
