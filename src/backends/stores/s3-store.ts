import type { GetObjectCommandOutput, HeadObjectCommandOutput, PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { parseDuration, formatDuration } from '../../core/duration.js';
import { storeError, TykdrError } from '../../core/errors.js';
import type { S3Store as S3StoreConfig } from '../../core/config/load.js';
import {
  assertSafeKey,
  type DeleteResult,
  type ObjectInfo,
  type ObjectLock,
  type PutResult,
  type Store,
  type StoreEvent,
  type StoreOptions,
  type UnfinishedUpload,
} from '../../core/interfaces/store.js';
import { abortError as abortErrorOf } from '../../core/util/abort.js';
import { s3Location, s3Prefix } from './s3-location.js';
import { sdk } from './s3-sdk.js';
import { parallelRanges, readRange, type DownloadOptions } from './s3-download.js';
import { currentTransfer, Transfer, TransferRetryStrategy, watchHandler } from './s3-transfer.js';
import { BodyFailed, unsignedPayloadOverTls, uploadObject, type UploadFailure } from './s3-upload.js';

const {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  S3Client: S3ClientClass,
  S3ServiceException,
} = sdk;

const DAY_MS = 86_400_000;
/** The largest download range, whatever partSizeMiB says (up to 512): memory is downloadConcurrency ranges. */
const MAX_RANGE_MIB = 16;
/** Longest wait for aborting an unfinished multipart upload after a failure, so a dead store cannot hold the exit. */
const ABANDON_MS = 10_000;

/**
 * An S3 bucket (or S3-compatible service) as a store. Uploads stream as a PutObject (objects smaller than a
 * part) or a multipart upload of unknown length (s3-upload.ts): memory is about (uploadConcurrency + 1) x
 * partSize. Credentials come from the config or, when unset, from the standard AWS chain (env, profile,
 * SSO, instance role).
 *
 * Faults: every request has a connection timeout (store.connectTimeout) and an idle timeout
 * (store.stallTimeout); transient failures are retried with backoff up to store.maxAttempts
 * (TransferRetryStrategy), a download broken mid-way resumes with a Range request; every operation is
 * watched by a Transfer that reports stalls and fails the operation when no byte moved for
 * store.stallTimeout while it waited on the store (s3-transfer.ts).
 *
 * With `objectLock` configured, every object is uploaded with that retention mode and a retain-until
 * date of now + days (on PutObject or CreateMultipartUpload). S3 and MinIO require an integrity checksum
 * on such uploads; every upload asks for a CRC32 checksum explicitly, so that holds even when
 * AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED turns the SDK's default off.
 * Object Lock implies a versioned bucket, so `delete` works on versions (see Store.delete).
 */
export class S3Store implements Store {
  readonly location: string;
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly stallMs: number;
  private readonly maxAttempts: number;
  private readonly onEvent: (e: StoreEvent) => void;

  constructor(
    private readonly cfg: S3StoreConfig,
    opts: StoreOptions = {},
    client?: S3Client,
  ) {
    this.prefix = s3Prefix(cfg.prefix);
    this.location = s3Location(cfg.bucket, cfg.prefix);
    this.stallMs = parseDuration(cfg.stallTimeout ?? '60s') ?? 60_000;
    this.maxAttempts = cfg.maxAttempts ?? 5;
    const connectMs = parseDuration(cfg.connectTimeout ?? '10s') ?? 10_000;
    this.onEvent = (e) => {
      try {
        opts.onEvent?.(e);
      } catch {
        // A progress printer must not break a transfer.
      }
    };
    this.client =
      client ??
      new S3ClientClass({
        region: cfg.region,
        endpoint: cfg.endpoint,
        forcePathStyle: cfg.forcePathStyle,
        credentials:
          cfg.accessKeyId !== undefined && cfg.secretAccessKey !== undefined
            ? {
                accessKeyId: cfg.accessKeyId,
                secretAccessKey: cfg.secretAccessKey.reveal(),
                sessionToken: cfg.sessionToken?.reveal(),
              }
            : undefined,
        maxAttempts: this.maxAttempts,
        retryStrategy: new TransferRetryStrategy(this.maxAttempts),
        // A socket idle for twice the stall limit is given up: a backstop only, since the operation's
        // Transfer fails it at the stall limit first (a retry on a fresh connection would hide the stall).
        requestHandler: { connectionTimeout: connectMs, socketTimeout: 2 * this.stallMs },
      });
    // Wrap the handler the SDK built from those options, so the Transfer of each request sees its bytes.
    const config = this.client.config as unknown as { requestHandler: Parameters<typeof watchHandler>[0] };
    config.requestHandler = watchHandler(config.requestHandler);
    unsignedPayloadOverTls(this.client);
  }

  /** "s3://bucket/prefix/ (endpoint http://host:port)", without any credentials in the endpoint. */
  private where(): string {
    return `${this.location}${this.cfg.endpoint ? ` (endpoint ${safeEndpoint(this.cfg.endpoint)})` : ''}`;
  }

  private transfer(operation: string, signal: AbortSignal | undefined): Transfer {
    return new Transfer(
      operation,
      { stallMs: this.stallMs },
      this.onEvent,
      (t, idleMs) =>
        storeError(
          `${t.operation} in ${this.where()}: no progress for ${formatDuration(idleMs)} (store.stallTimeout is ${formatDuration(this.stallMs)})` +
            (t.retries > 0 ? `, after ${t.retries} ${t.retries === 1 ? 'retry' : 'retries'} (last: ${t.lastProblem})` : ''),
          'check the network path to the store and that the store answers; on a slow link raise store.stallTimeout',
        ),
      signal,
    );
  }

  /**
   * Runs one operation's requests under a Transfer. Rejects with the stall's storeError, with the caller's
   * abort (its reason when that is an Error), or with the SDK's own error for the caller to explain.
   */
  private async watched<T>(operation: string, signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const t = this.transfer(operation, signal);
    try {
      return await currentTransfer.run(t, () => fn(t.signal));
    } catch (err) {
      throw this.settled(err, t, signal);
    } finally {
      t.close();
    }
  }

  /** The error an operation ends with once its Transfer knows why: stall, caller abort, or the SDK's error. */
  private settled(err: unknown, t: Transfer, signal: AbortSignal | undefined): unknown {
    if (t.stallError) return t.stallError;
    if (t.callerAborted && signal) return signal.reason instanceof Error ? signal.reason : abortErrorOf(signal);
    return err;
  }

  /** What a download fails with: the stall's storeError, the caller's own abort reason as it is, or the error explained. */
  private failed(err: unknown, t: Transfer, signal: AbortSignal | undefined, what: string): Error {
    const e = this.settled(err, t, signal);
    if (!t.stallError && t.callerAborted && e === signal?.reason) return e as Error;
    return this.explain(e, what);
  }

  private full(key: string): string {
    assertSafeKey(key);
    return `${this.prefix}${key}`;
  }

  async check(signal?: AbortSignal): Promise<void> {
    try {
      await this.watched(`access check of bucket ${this.cfg.bucket}`, signal, (s) =>
        this.client.send(new HeadBucketCommand({ Bucket: this.cfg.bucket }), { abortSignal: s }),
      );
    } catch (err) {
      throw this.explain(err, `bucket ${this.cfg.bucket}`);
    }
    if (this.cfg.objectLock) await this.checkObjectLock(signal);
  }

  /** store.objectLock is set: the bucket must have Object Lock enabled, or every upload would be refused. */
  private async checkObjectLock(signal?: AbortSignal): Promise<void> {
    const fix =
      'Object Lock can only be enabled when a bucket is created (aws s3api create-bucket --object-lock-enabled-for-bucket, ' +
      'or `mc mb --with-lock`): create such a bucket and point store.bucket at it, or remove store.objectLock';
    let enabled: string | undefined;
    try {
      const out = await this.watched(`Object Lock check of bucket ${this.cfg.bucket}`, signal, (s) =>
        this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.cfg.bucket }), { abortSignal: s }),
      );
      enabled = out.ObjectLockConfiguration?.ObjectLockEnabled;
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'ObjectLockConfigurationNotFoundError') {
        throw storeError(`bucket "${this.cfg.bucket}" does not have Object Lock enabled, but store.objectLock is set (${this.location})`, fix, err);
      }
      throw this.explain(err, `Object Lock configuration of bucket ${this.cfg.bucket}`);
    }
    if (enabled !== 'Enabled') {
      throw storeError(`bucket "${this.cfg.bucket}" does not have Object Lock enabled, but store.objectLock is set (${this.location})`, fix);
    }
  }

  async put(key: string, body: Readable, opts: { signal?: AbortSignal; contentType?: string } = {}): Promise<PutResult> {
    const Key = this.full(key);
    if (await this.stat(key, opts)) {
      throw storeError(`object ${this.location}${key} already exists; objects are never overwritten`);
    }
    const params: PutObjectCommandInput & { Bucket: string; Key: string } = {
      Bucket: this.cfg.bucket,
      Key,
      ContentType: opts.contentType ?? 'application/octet-stream',
      ServerSideEncryption: this.cfg.serverSideEncryption,
      SSEKMSKeyId: this.cfg.serverSideEncryption === 'aws:kms' ? this.cfg.kmsKeyId : undefined,
      StorageClass: this.cfg.storageClass,
      ...(this.cfg.objectLock
        ? {
            ObjectLockMode: this.cfg.objectLock.mode,
            ObjectLockRetainUntilDate: new Date(Date.now() + this.cfg.objectLock.days * DAY_MS),
          }
        : {}),
    };
    const t = this.transfer(`upload of ${key}`, opts.signal);
    try {
      await currentTransfer.run(t, () =>
        uploadObject({
          client: this.client,
          params,
          body,
          partSize: this.cfg.partSizeMiB * 1024 * 1024,
          concurrency: this.cfg.uploadConcurrency,
          signal: t.signal,
          abandon: (uploadId) => this.abandon(key, uploadId),
        }),
      );
    } catch (err) {
      body.destroy();
      if (t.stallError) throw this.leftBehind(t.stallError, err);
      if (t.callerAborted && opts.signal) throw opts.signal.reason instanceof Error ? opts.signal.reason : abortErrorOf(opts.signal);
      // A body stream that failed (source error, integrity error) keeps its own error.
      if (err instanceof BodyFailed) throw err.original;
      throw this.leftBehind(this.explain(err, `upload of ${key}`), err);
    } finally {
      t.close();
    }
    // What the bucket holds, not what we sent: the caller compares it with what it hashed.
    const stored = await this.stat(key, opts);
    if (!stored) throw storeError(`object ${this.location}${key} is missing right after its upload`, 'check the bucket for lifecycle rules or replication delays');
    return { bytes: stored.size, retries: t.retries };
  }

  /** Aborts an unfinished multipart upload after a failed put, within ABANDON_MS; false when that failed. */
  private async abandon(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.removeUnfinished({ key, id: uploadId, since: new Date() }, { signal: AbortSignal.timeout(Math.min(this.stallMs, ABANDON_MS)) });
      return true;
    } catch {
      return false;
    }
  }

  /** Adds to a put's storeError that its multipart upload could not be aborted, and what removes it. */
  private leftBehind(e: Error, err: unknown): Error {
    const left = (err as UploadFailure | undefined)?.leftUploadId;
    if (left === undefined || !(e instanceof TykdrError)) return e;
    return new TykdrError(e.kind, `${e.message}; its unfinished multipart upload could not be aborted`, {
      fix: `${e.fix ? `${e.fix}; ` : ''}\`tykdr prune --confirm\` removes it once older than retention.incompleteGrace`,
      cause: e.cause,
    });
  }

  async get(key: string, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
    const Key = this.full(key);
    const t = this.transfer(`download of ${key}`, opts.signal);
    let first: GetObjectCommandOutput;
    try {
      first = await currentTransfer.run(t, () => this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key }), { abortSignal: t.signal }));
      if (!(first.Body instanceof Readable)) throw storeError(`object ${key} has no readable body`);
    } catch (err) {
      t.close();
      throw this.failed(err, t, opts.signal, `object ${key}`);
    }
    // The reader going (the stream destroyed) aborts every request at once: the generator may be waiting on a range
    // that is slow to come, and its finally would otherwise wait for it (up to stallTimeout).
    const gone = new AbortController();
    const out = Readable.from(this.body(t, key, first, AbortSignal.any([t.signal, gone.signal]), opts.signal), { objectMode: false });
    const destroy = out._destroy.bind(out);
    out._destroy = (err, cb) => {
      try {
        gone.abort();
        (first.Body as Readable).destroy();
      } finally {
        destroy(err, cb);
      }
    };
    // A stream destroyed before it was read never runs the generator, so its finally neither: release here too (both
    // calls may repeat).
    out.once('close', () => {
      (first.Body as Readable).destroy();
      t.close();
    });
    return out;
  }

  /**
   * The bytes of a download (s3-download.ts). An object larger than one range (partSizeMiB, at most MAX_RANGE_MIB) is
   * read as ranges on up to downloadConcurrency connections at once; a smaller one, or any object when
   * downloadConcurrency is 1 or its ETag is weak, on the connection of the first GET. Either way a connection broken
   * mid-way is resumed with a Range request pinned to the same version (If-Match on its ETag), up to maxAttempts per
   * range. `requests` aborts every request (a stall, the caller, the reader going); `signal` is the caller's.
   */
  private async *body(t: Transfer, key: string, first: GetObjectCommandOutput, requests: AbortSignal, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
    // A weak ETag (W/"...", from a proxy that transforms bodies) pins nothing, If-Match comparing strongly: the object
    // is then read on one connection, and a resume goes without If-Match (the manifest's SHA-256 still decides).
    const pinned = first.ETag !== undefined && !first.ETag.startsWith('W/');
    const d: DownloadOptions = {
      client: this.client,
      bucket: this.cfg.bucket,
      key: this.full(key),
      name: key,
      where: this.where(),
      etag: pinned ? first.ETag : undefined,
      transfer: t,
      maxAttempts: this.maxAttempts,
      signal: requests,
    };
    const total = first.ContentLength;
    const range = Math.min(this.cfg.partSizeMiB, MAX_RANGE_MIB) * 1024 * 1024;
    const concurrency = this.cfg.downloadConcurrency ?? 4; // the schema's default, for a config made without it
    const body = first.Body as Readable;
    try {
      if (concurrency > 1 && total !== undefined && total > range && pinned) yield* parallelRanges(d, body, total, range, concurrency);
      else yield* readRange(d, 0, total, body);
    } catch (err) {
      throw this.failed(err, t, signal, `download of ${key}`);
    } finally {
      body.destroy();
      t.close();
    }
  }

  async stat(key: string, opts: { signal?: AbortSignal } = {}): Promise<ObjectInfo | null> {
    try {
      const Key = this.full(key);
      const out = await this.watched(`stat of ${key}`, opts.signal, (s) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key }), { abortSignal: s }),
      );
      const lock = lockOf(out);
      return { key, size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0), ...(lock ? { lock } : {}) };
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey')) return null;
      throw this.explain(err, `object ${key}`);
    }
  }

  async *list(prefix: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let out;
      try {
        const ContinuationToken = token;
        out = await this.watched(`listing of ${prefix || '/'}`, opts.signal, (s) =>
          this.client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: `${this.prefix}${prefix}`, ContinuationToken }), { abortSignal: s }),
        );
      } catch (err) {
        throw this.explain(err, `listing ${prefix}`);
      }
      for (const o of out.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(key: string, opts: { signal?: AbortSignal } = {}): Promise<DeleteResult> {
    const Key = this.full(key);
    const versions = await this.versionsOf(key, opts.signal);
    if (versions === 'denied') {
      // Without s3:ListBucketVersions all we can do is a plain delete: it frees the object in an unversioned
      // bucket, and in a versioned one leaves a delete marker over the data.
      try {
        await this.watched(`delete of ${key}`, opts.signal, (s) => this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key }), { abortSignal: s }));
      } catch (err) {
        throw this.explain(err, `deleting ${key}`);
      }
      return { status: 'deleted' };
    }
    if (versions.length === 0) return { status: 'missing' };
    let locked: ObjectLock | undefined;
    for (const VersionId of versions) {
      try {
        await this.watched(`delete of ${key}`, opts.signal, (s) =>
          this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key, VersionId }), { abortSignal: s }),
        );
      } catch (err) {
        // S3 answers 403 AccessDenied for a version under retention, MinIO 400 InvalidRequest ("Object is
        // WORM protected"): rather than trust either, ask the version itself whether it is locked.
        const lock = err instanceof S3ServiceException ? await this.lockOfVersion(key, VersionId, opts.signal) : undefined;
        if (!lock) throw this.explain(err, `deleting ${key} (version ${VersionId})`);
        // Report the lock that lasts longest (a legal hold has no end).
        if (!locked || (locked.until !== undefined && (lock.until === undefined || lock.until > locked.until))) locked = lock;
      }
    }
    return locked ? { status: 'locked', lock: locked } : { status: 'deleted' };
  }

  /** Version ids (delete markers included) of exactly this key; 'denied' without permission to list versions. */
  private async versionsOf(key: string, signal?: AbortSignal): Promise<string[] | 'denied'> {
    const Key = this.full(key);
    const ids: string[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    do {
      let out;
      try {
        const markers = { KeyMarker, VersionIdMarker };
        out = await this.watched(`listing of the versions of ${key}`, signal, (s) =>
          this.client.send(new ListObjectVersionsCommand({ Bucket: this.cfg.bucket, Prefix: Key, ...markers }), { abortSignal: s }),
        );
      } catch (err) {
        const denied = err instanceof S3ServiceException && (err.$metadata?.httpStatusCode === 403 || err.name === 'AccessDenied');
        if (denied && !this.cfg.objectLock) return 'denied';
        throw denied
          ? storeError(
              `listing the versions of ${key} in ${this.location} was denied; with Object Lock a delete must remove versions by id`,
              'grant s3:ListBucketVersions and s3:DeleteObjectVersion to the credentials that prune',
              err,
            )
          : this.explain(err, `listing the versions of ${key}`);
      }
      for (const v of [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])]) {
        if (v.Key === Key && v.VersionId !== undefined) ids.push(v.VersionId);
      }
      const more = out.IsTruncated === true;
      KeyMarker = more ? out.NextKeyMarker : undefined;
      VersionIdMarker = more ? out.NextVersionIdMarker : undefined;
    } while (KeyMarker !== undefined);
    return ids;
  }

  /** The lock in force on one version, or undefined when it is not locked (or cannot be asked). */
  private async lockOfVersion(key: string, VersionId: string, signal?: AbortSignal): Promise<ObjectLock | undefined> {
    const Key = this.full(key);
    try {
      return lockOf(
        await this.watched(`stat of ${key} (version ${VersionId})`, signal, (s) =>
          this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key, VersionId }), { abortSignal: s }),
        ),
      );
    } catch {
      return undefined;
    }
  }

  /**
   * Multipart uploads under the store prefix that were never completed or aborted. The listing is of the
   * whole bucket, filtered here: MinIO lists multipart uploads only for an exact key or for the whole
   * bucket, never for a shorter prefix (AWS would take any prefix; the answer is the same).
   */
  async *listUnfinished(prefix: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<UnfinishedUpload> {
    const wanted = `${this.prefix}${prefix}`;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      let out;
      try {
        const markers = { KeyMarker, UploadIdMarker };
        out = await this.watched('listing of unfinished uploads', opts.signal, (s) =>
          this.client.send(new ListMultipartUploadsCommand({ Bucket: this.cfg.bucket, ...markers }), { abortSignal: s }),
        );
      } catch (err) {
        throw this.explain(err, 'listing unfinished multipart uploads');
      }
      for (const u of out.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined || !u.Key.startsWith(wanted)) continue;
        yield { key: u.Key.slice(this.prefix.length), id: u.UploadId, since: u.Initiated ?? new Date(0) };
      }
      const more = out.IsTruncated === true;
      KeyMarker = more ? out.NextKeyMarker : undefined;
      UploadIdMarker = more ? out.NextUploadIdMarker : undefined;
    } while (KeyMarker !== undefined);
  }

  async removeUnfinished(upload: UnfinishedUpload, opts: { signal?: AbortSignal } = {}): Promise<'removed' | 'missing'> {
    const Key = this.full(upload.key);
    try {
      // MinIO answers an abort of an upload that is already gone with success: ask first whether it exists
      // (without s3:ListMultipartUploadParts the question is skipped and a gone upload reads as removed).
      await this.watched(`parts listing of the unfinished upload of ${upload.key}`, opts.signal, (s) =>
        this.client.send(new ListPartsCommand({ Bucket: this.cfg.bucket, Key, UploadId: upload.id, MaxParts: 1 }), { abortSignal: s }),
      ).catch((err: unknown) => {
        if (err instanceof S3ServiceException && (err.name === 'AccessDenied' || err.$metadata?.httpStatusCode === 403)) return;
        throw err;
      });
      await this.watched(`abort of the unfinished upload of ${upload.key}`, opts.signal, (s) =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key, UploadId: upload.id }), { abortSignal: s }),
      );
      return 'removed';
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === 'NoSuchUpload' || err.$metadata?.httpStatusCode === 404)) return 'missing';
      throw this.explain(err, `aborting the unfinished upload of ${upload.key}`);
    }
  }

  /** Maps SDK and network errors to storeErrors that name the bucket and say what to do. */
  private explain(err: unknown, what: string): Error {
    if (err instanceof TykdrError) return err;
    if ((err as Error)?.name === 'AbortError') return err as Error;
    const where = `${what} in ${this.where()}`;
    const attempts = (err as { $metadata?: { attempts?: number } })?.$metadata?.attempts ?? 1;
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    if (err instanceof S3ServiceException) {
      const status = err.$metadata?.httpStatusCode;
      if (err.name === 'NoSuchBucket' || (err.name === 'NotFound' && what.startsWith('bucket'))) {
        return storeError(`bucket "${this.cfg.bucket}" does not exist (${where})`, 'create the bucket first, or fix store.bucket', err);
      }
      if (err.name === 'NoSuchKey' || err.name === 'NotFound') {
        return storeError(`${where}: not found`, 'check the snapshot id with `tykdr snapshots`', err);
      }
      if (status === 403 || ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden'].includes(err.name)) {
        return storeError(
          `${where}: access denied (${err.name})`,
          'check the credentials (store.accessKeyId / AWS_* variables / profile) and that they may read, write and list the bucket',
          err,
        );
      }
      if (err.name === 'PreconditionFailed' || status === 412) {
        return storeError(`${where}: the object changed while it was being read`, 'run the command again', err);
      }
      const fix = status !== undefined && status >= 500 ? 'the store is failing; check its health, then run the command again' : undefined;
      return storeError(`${where}: ${err.name}${status ? ` (HTTP ${status})` : ''}${tries}: ${err.message}`, fix, err);
    }
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
      return storeError(`${where}: cannot reach the S3 endpoint (${code})${tries}`, 'check store.endpoint and the network', err);
    }
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT') {
      return storeError(`${where}: the connection to the store broke (${code})${tries}`, 'check the network path to the store and its health, then run the command again', err);
    }
    if ((err as Error)?.name === 'TimeoutError') {
      const connecting = /establish a connection/.test((err as Error).message);
      return storeError(
        connecting
          ? `${where}: no connection within store.connectTimeout${tries}`
          : `${where}: the store stopped answering (idle for store.stallTimeout)${tries}`,
        'check store.endpoint, the network path to the store and that the store answers',
        err,
      );
    }
    if ((err as Error)?.name === 'CredentialsProviderError') {
      return storeError(
        `${where}: no AWS credentials found`,
        'set store.accessKeyId and store.secretAccessKey (use ${ENV_VARS}), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a profile',
        err,
      );
    }
    return storeError(`${where}: ${(err as Error)?.message ?? String(err)}`, undefined, err);
  }
}

/** The endpoint as shown in messages: no user:password part, no query. */
function safeEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(invalid endpoint)';
  }
}

/** The lock in force on an object (retention not yet expired, or a legal hold), from its HEAD response. */
function lockOf(out: Pick<HeadObjectCommandOutput, 'ObjectLockMode' | 'ObjectLockRetainUntilDate' | 'ObjectLockLegalHoldStatus'>): ObjectLock | undefined {
  const until = out.ObjectLockRetainUntilDate;
  if (out.ObjectLockMode !== undefined && until !== undefined && until.getTime() > Date.now()) return { mode: out.ObjectLockMode, until };
  if (out.ObjectLockLegalHoldStatus === 'ON') return { mode: 'LEGAL HOLD' };
  return undefined;
}
