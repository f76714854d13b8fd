import type { Readable } from 'node:stream';
import type { S3Store as S3StoreConfig, Store as StoreConfig } from '../../core/config/load.js';
import { LocalStore } from './local-store.js';
import { s3Location } from './s3-location.js';
import type { DeleteResult, ObjectInfo, PutResult, Store, StoreOptions, UnfinishedUpload } from '../../core/interfaces/store.js';

type Factory<K extends StoreConfig['kind']> = (cfg: Extract<StoreConfig, { kind: K }>, opts: StoreOptions) => Store;

/** Stores plug in by kind; the config schema validates each kind's section. */
const factories: { [K in StoreConfig['kind']]: Factory<K> } = {
  local: (cfg) => new LocalStore(cfg.path),
  s3: (cfg, opts) => new LazyS3Store(cfg, opts),
};

/** The store a config section describes; `opts.onEvent` hears its retries and stalls (for progress output and logs). */
export function openStore(cfg: StoreConfig, opts: StoreOptions = {}): Store {
  return (factories[cfg.kind] as Factory<typeof cfg.kind>)(cfg as never, opts);
}

/**
 * The S3 store, with the AWS SDK (about 0.1 s and tens of MB to load) imported on first use, so commands
 * working with a local store never pay for it.
 */
class LazyS3Store implements Store {
  readonly location: string;
  #inner: Promise<Store> | undefined;

  constructor(
    private readonly cfg: S3StoreConfig,
    private readonly opts: StoreOptions,
  ) {
    this.location = s3Location(cfg.bucket, cfg.prefix);
  }

  private load(): Promise<Store> {
    return (this.#inner ??= import('./s3-store.js').then((m) => new m.S3Store(this.cfg, this.opts)));
  }

  async check(signal?: AbortSignal): Promise<void> {
    return (await this.load()).check(signal);
  }
  async put(key: string, body: Readable, opts?: { signal?: AbortSignal; contentType?: string }): Promise<PutResult> {
    return (await this.load()).put(key, body, opts);
  }
  async get(key: string, opts?: { signal?: AbortSignal }): Promise<Readable> {
    return (await this.load()).get(key, opts);
  }
  async stat(key: string, opts?: { signal?: AbortSignal }): Promise<ObjectInfo | null> {
    return (await this.load()).stat(key, opts);
  }
  async *list(prefix: string, opts?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> {
    yield* (await this.load()).list(prefix, opts);
  }
  async delete(key: string, opts?: { signal?: AbortSignal }): Promise<DeleteResult> {
    return (await this.load()).delete(key, opts);
  }
  async *listUnfinished(prefix: string, opts?: { signal?: AbortSignal }): AsyncIterable<UnfinishedUpload> {
    yield* (await this.load()).listUnfinished(prefix, opts);
  }
  async removeUnfinished(upload: UnfinishedUpload, opts?: { signal?: AbortSignal }): Promise<'removed' | 'missing'> {
    return (await this.load()).removeUnfinished(upload, opts);
  }
}
