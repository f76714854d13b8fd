import { pipeline } from 'node:stream/promises';
import type { MongoComponent } from '../../../core/config/load.js';
import { sourceUnreachable } from '../../../core/errors.js';
import type { Source, SourceArtifact, SourceFacts } from '../../../core/interfaces/source.js';
import { ArchiveInspector, type ArchiveFacts } from '../archive-inspector.js';
import { connectMongo, endpoint, explainMongoError, serverFacts, type MongoEndpoint, type ServerFacts } from '../client.js';
import type { MongoCollectionFacts, MongoFacts } from '../facts.js';
import { failureSummary, findTool, spawnTool } from '../tools.js';
import { displayHosts, displayUri, scrubMongoText, toolUri } from '../uri.js';

/** True when a collection name is left out by one of the patterns (a name, or a prefix ending in *). */
export function isExcluded(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** mongodump's flags for the patterns: --excludeCollection per name, --excludeCollectionsWithPrefix per prefix*. */
export function excludeArgs(patterns: readonly string[]): string[] {
  return patterns.map((p) => (p.endsWith('*') ? `--excludeCollectionsWithPrefix=${p.slice(0, -1)}` : `--excludeCollection=${p}`));
}

interface BeforeDump {
  server: ServerFacts;
  /** estimatedDocumentCount per included collection (null for views). */
  counts: Map<string, number | null>;
  excluded: string[];
}

/**
 * One MongoDB database as a mongodump archive (`mongodump --db=DB --archive`, streamed from its stdout).
 * The archive is checked as it passes (magic, structure, each namespace's CRC-64, a complete end) and its
 * documents counted per collection, without buffering. The connection string never appears on a command
 * line (see spawnTool).
 *
 * Consistency: mongodump without --oplog (which needs a whole replica set dump) reads each collection at its
 * own time. consistent_at is when mongodump started: writes after it may or may not be in the archive.
 */
export class MongoSource implements Source {
  readonly kind = 'mongo';
  readonly component: string;

  constructor(private readonly cfg: MongoComponent) {
    this.component = cfg.name;
  }

  async check(signal?: AbortSignal): Promise<void> {
    await findTool(this.cfg, 'mongodump');
    const ep = endpoint(this.cfg, 'source');
    const client = await connectMongo(ep, signal);
    try {
      await client.db(this.cfg.database).listCollections({}, { nameOnly: true, authorizedCollections: true }).toArray();
    } catch (err) {
      throw explainMongoError(err, ep, `listing the collections of database "${this.cfg.database}"`);
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  async open(signal?: AbortSignal): Promise<SourceArtifact> {
    const cfg = this.cfg;
    const bin = await findTool(cfg, 'mongodump');
    const ep = endpoint(cfg, 'source');
    const before = await this.#collectionsBefore(ep, signal);

    const consistentAt = new Date();
    const child = await spawnTool(bin, toolUri(ep.parsed), [
      `--db=${cfg.database}`,
      '--archive',
      `--numParallelCollections=${cfg.parallelCollections}`,
      ...excludeArgs(cfg.excludeCollections),
    ]);
    const inspector = new ArchiveInspector({
      beforeEnd: async () => {
        const r = await child.done;
        const lines = child.stderrTail.lines().map((l) => scrubMongoText(l, [ep.parsed.password, ep.secret.reveal()]));
        const failed = lines.some((l) => /\bFailed:/.test(l));
        if (r.code !== 0 || failed) {
          const how = r.code !== null ? `exited with code ${r.code}` : `was killed by ${r.signal}`;
          throw sourceUnreachable(
            `mongodump ${failed && r.code === 0 ? 'reported a failure' : how} while dumping database "${cfg.database}" from ${displayHosts(ep.parsed)}: ${failureSummary(lines)}`,
            `check ${ep.configPath} and that its user may read the database (the "backup" role), then run the backup again`,
          );
        }
      },
    });
    // The consumer stopped early (a failure elsewhere, an abort): mongodump must not run on.
    inspector.once('close', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    });
    // Errors of either side reach the consumer through the inspector (pipeline destroys it with them).
    pipeline(child.stdout, inspector, { signal }).catch(() => undefined);

    return {
      stream: inspector,
      format: 'mongo-archive',
      consistentAt,
      finish: async () => ({ source: this.#facts(ep, before, inspector.facts()) }),
    };
  }

  /** Server version, excluded collections, and each included collection's estimated count, before the dump. */
  async #collectionsBefore(ep: MongoEndpoint, signal?: AbortSignal): Promise<BeforeDump> {
    const client = await connectMongo(ep, signal);
    try {
      const server = await serverFacts(client);
      const db = client.db(this.cfg.database);
      const counts = new Map<string, number | null>();
      const excluded: string[] = [];
      for (const info of await db.listCollections({}, { nameOnly: false, authorizedCollections: true }).toArray()) {
        const name = String(info.name);
        if (name.startsWith('system.')) continue;
        if (isExcluded(name, this.cfg.excludeCollections)) excluded.push(name);
        // Views hold no documents of their own; estimatedDocumentCount reads collection metadata, not data.
        else counts.set(name, info.type === 'view' ? null : await db.collection(name).estimatedDocumentCount());
      }
      return { server, counts, excluded: excluded.sort() };
    } catch (err) {
      throw explainMongoError(err, ep, `reading the collections of database "${this.cfg.database}"`);
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  #facts(ep: MongoEndpoint, before: BeforeDump, a: ArchiveFacts): SourceFacts['source'] {
    const db = this.cfg.database;
    const collections: Record<string, MongoCollectionFacts> = {};
    let total = 0;
    for (const c of a.collections.filter((x) => x.db === db).sort((x, y) => x.collection.localeCompare(y.collection))) {
      const data = a.namespaces[`${db}.${c.type === 'timeseries' ? `system.buckets.${c.collection}` : c.collection}`];
      const entry: MongoCollectionFacts = {
        ...(c.type !== 'collection' ? { type: c.type } : {}),
        documents: data?.documents ?? 0,
        documents_before_dump: before.counts.get(c.collection) ?? null,
        bytes: data?.bytes ?? 0,
        indexes: c.indexes.map((i) => ({ name: i.name, key: i.key, ...(i.unique ? { unique: true } : {}) })),
      };
      if (c.options.capped === true) {
        entry.capped = true;
        if (typeof c.options.size === 'number') entry.size = c.options.size;
        if (typeof c.options.max === 'number' && c.options.max > 0) entry.max = c.options.max;
      }
      collections[c.collection] = entry;
      total += entry.documents;
    }
    const facts: MongoFacts = {
      address: displayHosts(ep.parsed),
      uri: displayUri(ep.parsed),
      database: db,
      server_version: before.server.version,
      ...(before.server.ferretdbVersion ? { ferretdb_version: before.server.ferretdbVersion } : {}),
      tool_version: a.toolVersion,
      archive_format: a.formatVersion,
      parallel_collections: a.concurrentCollections,
      exclude_patterns: [...this.cfg.excludeCollections],
      excluded: before.excluded,
      collections,
      total_documents: total,
    };
    return facts;
  }
}
