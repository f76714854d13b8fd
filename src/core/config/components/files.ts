import { z } from 'zod';
import { tier, type ResolveContext } from '../common.js';

export const filesComponentSchema = z.strictObject({
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


export type FilesComponentConfig = z.infer<typeof filesComponentSchema>;
export type FilesComponent = FilesComponentConfig & { name: string };

export function resolveFiles(c: FilesComponentConfig, name: string, ctx: ResolveContext): FilesComponent {
  return { ...c, name, roots: ctx.relAll(c.roots), restore: { to: ctx.rel(c.restore.to) } };
}
