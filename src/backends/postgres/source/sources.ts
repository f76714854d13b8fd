import type { PostgresComponent } from '../../../core/config/load.js';
import type { Source } from '../../../core/interfaces/source.js';
import { PostgresGlobalsSource } from './globals-source.js';
import { PostgresSource } from './postgres-source.js';

/**
 * The PostgreSQL sources of a component: its database dump, and with `globals: true` the cluster's roles and
 * tablespaces as "<name>-globals". Globals come first: the manifest keeps this order and a restore follows it,
 * so the roles exist before the dump that names them as owners is restored.
 */
export function postgresSources(cfg: PostgresComponent): Source[] {
  return cfg.globals ? [new PostgresGlobalsSource(cfg), new PostgresSource(cfg)] : [new PostgresSource(cfg)];
}
