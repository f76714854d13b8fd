import { z } from 'zod';
import type { ResolveContext } from '../common.js';
import { filesComponentSchema, resolveFiles, type FilesComponent } from './files.js';
import { mongoComponentSchema, resolveMongo, type MongoComponent } from './mongo.js';
import { postgresComponentSchema, resolvePostgres, type PostgresComponent } from './postgres.js';
import { redisComponentSchema, resolveRedis, type RedisComponent } from './redis.js';

/** Component kinds plug in here: a schema for their section and a resolver that wraps their secrets. */
export const componentSchema = z.discriminatedUnion('kind', [
  redisComponentSchema,
  filesComponentSchema,
  postgresComponentSchema,
  mongoComponentSchema,
]);

export type ComponentConfig = z.infer<typeof componentSchema>;
export type Component = RedisComponent | FilesComponent | PostgresComponent | MongoComponent;

export function resolveComponent(c: ComponentConfig, name: string, ctx: ResolveContext): Component {
  switch (c.kind) {
    case 'redis':
      return resolveRedis(c, name, ctx);
    case 'files':
      return resolveFiles(c, name, ctx);
    case 'postgres':
      return resolvePostgres(c, name, ctx);
    case 'mongo':
      return resolveMongo(c, name, ctx);
  }
}

export type { FilesComponent, MongoComponent, PostgresComponent, RedisComponent };
