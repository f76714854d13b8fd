import type { MongoComponent } from '../../../core/config/load.js';
import type { Source } from '../../../core/interfaces/source.js';
import { MongoSource } from './mongo-source.js';

/** The MongoDB source of a component: one mongodump archive of its database. */
export function mongoSources(cfg: MongoComponent): Source[] {
  return [new MongoSource(cfg)];
}
