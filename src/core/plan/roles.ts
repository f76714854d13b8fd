/** What a plan step can restore: roles that map onto the components of a snapshot and config. */
export const PLAN_COMPONENTS = ['redis', 'database', 'dashboard', 'gateway'] as const;
export type PlanComponent = (typeof PLAN_COMPONENTS)[number];
