import { z } from 'zod';
import { parseDuration } from '../duration.js';
import { PLAN_COMPONENTS } from './roles.js';

/**
 * restore: put the component's artifacts back (and restart it where a restart command is configured);
 * restart: only run its restart command; verify: only run its checks.
 */
export const PLAN_ACTIONS = ['restore', 'restart', 'verify'] as const;

const step = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'step ids are lowercase letters, digits and dashes'),
  component: z.enum(PLAN_COMPONENTS),
  action: z.enum(PLAN_ACTIONS).default('restore'),
  depends_on: z.array(z.string()).default([]),
  verify: z.array(z.string()).min(1, 'every step must verify something: list at least one check'),
  timeout: z
    .string()
    .default('30m')
    .refine((s) => parseDuration(s) !== null, { message: 'expected a duration such as 90s, 15m or 1h' }),
  on_error: z.enum(['stop', 'continue']).default('stop'),
  description: z.string().optional(),
});

export const planSchema = z.strictObject({
  version: z.literal(1),
  name: z.string().min(1),
  description: z.string().optional(),
  steps: z.array(step).min(1, 'a plan needs at least one step'),
});

export type PlanData = z.infer<typeof planSchema>;
export type PlanStep = z.infer<typeof step>;
