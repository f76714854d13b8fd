import type { PlanComponent } from './roles.js';

/** What an action does to a component, in one sentence (plan show, dry runs, reports). */
export function describeAction(component: PlanComponent, action: string): string {
  if (action === 'verify') return `Only verify ${component}; nothing is changed.`;
  if (action === 'restart') return `Run the ${component} restart command, then verify.`;
  switch (component) {
    case 'redis':
      return 'Restore each Redis component (live: copy keys with DUMP/RESTORE, from an RDB, AOF or key-level snapshot; rdb-file / aof-file: stop Redis, place the file or folder, start it), then verify.';
    case 'database':
      return 'Restore the Dashboard database (PostgreSQL or MongoDB components); skipped when the snapshot has none.';
    case 'dashboard':
      return 'Extract the Dashboard files (role: dashboard), run dashboard.restartCommand, then verify its health.';
    case 'gateway':
      return 'Extract the Gateway files (role: gateway), run gateway.restartCommand, then prove it serves traffic.';
  }
}
