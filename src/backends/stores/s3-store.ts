import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  S3Client,
  S3ServiceException,
  type HeadObjectCommandOutput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { storeError, TykdrError } from '../../core/errors.js';
import type { S3Store as S3StoreConfig } from '../../core/config/load.js';
import { assertSafeKey, type DeleteResult, type ObjectInfo, type ObjectLock, type PutResult, type Store } from '../../core/interfaces/store.js';
import { s3Location, s3Prefix } from './s3-location.js';

const DAY_MS = 86_400_000;

/**
 * An S3 bucket (or S3-compatible service) as a store. Uploads stream through @aws-sdk/lib-storage as
 * multipart uploads of unknown length: memory is about (uploadConcurrency + 1) x partSize. Credentials come from the
 * config or, when unset, from the standard AWS chain (env, profile, SSO, instance role).
 *
 * With `objectLock` configured, every object is uploaded with that retention mode and a retain-until
 * date of now + days (on PutObject or CreateMultipartUpload: lib-storage passes the params through).
 * S3 and MinIO require an integrity checksum on such uploads; a CRC32 checksum is requested explicitly
 * so that holds even when AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED turns the SDK's default off.
 * Object Lock implies a versioned bucket, so `delete` works on versions (see Store.delete).
 */
export class S3Store implements Store {
  readonly location: string;
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly cfg: S3StoreConfig, client?: S3Client) {
    this.prefix = s3Prefix(cfg.prefix);
    this.location = s3Location(cfg.bucket, cfg.prefix);
    this.client =
      client ??
      new S3Client({
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
        maxAttempts: 3,
      });
  }

  private full(key: string): string {
    assertSafeKey(key);
    return `${this.prefix}${key}`;
  }

  async check(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.cfg.bucket }), { abortSignal: signal });
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
      const out = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.cfg.bucket }), { abortSignal: signal });
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
    const params: PutObjectCommandInput = {
      Bucket: this.cfg.bucket,
      Key,
      Body: body,
      ContentType: opts.contentType ?? 'application/octet-stream',
      ServerSideEncryption: this.cfg.serverSideEncryption,
      SSEKMSKeyId: this.cfg.serverSideEncryption === 'aws:kms' ? this.cfg.kmsKeyId : undefined,
      StorageClass: this.cfg.storageClass,
      ...(this.cfg.objectLock
        ? {
            ObjectLockMode: this.cfg.objectLock.mode,
            ObjectLockRetainUntilDate: new Date(Date.now() + this.cfg.objectLock.days * DAY_MS),
            ChecksumAlgorithm: 'CRC32' as const,
          }
        : {}),
    };
    const upload = new Upload({
      client: this.client,
      params,
      partSize: this.cfg.partSizeMiB * 1024 * 1024,
      queueSize: this.cfg.uploadConcurrency,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort().catch(() => undefined);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      opts.signal?.throwIfAborted();
      await upload.done();
    } catch (err) {
      // A body stream that failed (source error, integrity error) surfaces here: keep its own error.
      body.destroy();
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : abortError();
      if (err instanceof TykdrError) throw err;
      const bodyErr = (body as Readable & { errored?: unknown }).errored;
      if (bodyErr) throw bodyErr;
      throw this.explain(err, `upload of ${key}`);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    // What the bucket holds, not what we sent: the caller compares it with what it hashed.
    const stored = await this.stat(key, opts);
    if (!stored) throw storeError(`object ${this.location}${key} is missing right after its upload`, 'check the bucket for lifecycle rules or replication delays');
    return { bytes: stored.size };
  }

  async get(key: string, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.full(key) }), {
        abortSignal: opts.signal,
      });
      if (!(out.Body instanceof Readable)) throw storeError(`object ${key} has no readable body`);
      return out.Body;
    } catch (err) {
      throw this.explain(err, `object ${key}`);
    }
  }

  async stat(key: string, opts: { signal?: AbortSignal } = {}): Promise<ObjectInfo | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.full(key) }), {
        abortSignal: opts.signal,
      });
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
        out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: `${this.prefix}${prefix}`, ContinuationToken: token }),
          { abortSignal: opts.signal },
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
        await this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key }), { abortSignal: opts.signal });
      } catch (err) {
        throw this.explain(err, `deleting ${key}`);
      }
      return { status: 'deleted' };
    }
    if (versions.length === 0) return { status: 'missing' };
    let locked: ObjectLock | undefined;
    for (const VersionId of versions) {
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key, VersionId }), { abortSignal: opts.signal });
      } catch (err) {
        // S3 answers 403 AccessDenied for a version under retention, MinIO 400 InvalidRequest ("Object is
        // WORM protected"): rather than trust either, ask the version itself whether it is locked.
        const lock = err instanceof S3ServiceException ? await this.lockOfVersion(Key, VersionId, opts.signal) : undefined;
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
        out = await this.client.send(
          new ListObjectVersionsCommand({ Bucket: this.cfg.bucket, Prefix: Key, KeyMarker, VersionIdMarker }),
          { abortSignal: signal },
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
  private async lockOfVersion(Key: string, VersionId: string, signal?: AbortSignal): Promise<ObjectLock | undefined> {
    try {
      return lockOf(await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key, VersionId }), { abortSignal: signal }));
    } catch {
      return undefined;
    }
  }

  /** Maps SDK and network errors to storeErrors that name the bucket and say what to do. */
  private explain(err: unknown, what: string): Error {
    if (err instanceof TykdrError) return err;
    if ((err as Error)?.name === 'AbortError') return err as Error;
    const where = `${what} in ${this.location}${this.cfg.endpoint ? ` (endpoint ${this.cfg.endpoint})` : ''}`;
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
      return storeError(`${where}: ${err.name}${status ? ` (HTTP ${status})` : ''}: ${err.message}`, undefined, err);
    }
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || code === 'ECONNRESET') {
      return storeError(`${where}: cannot reach the S3 endpoint (${code})`, 'check store.endpoint and the network', err);
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

/** The lock in force on an object (retention not yet expired, or a legal hold), from its HEAD response. */
function lockOf(out: Pick<HeadObjectCommandOutput, 'ObjectLockMode' | 'ObjectLockRetainUntilDate' | 'ObjectLockLegalHoldStatus'>): ObjectLock | undefined {
  const until = out.ObjectLockRetainUntilDate;
  if (out.ObjectLockMode !== undefined && until !== undefined && until.getTime() > Date.now()) return { mode: out.ObjectLockMode, until };
  if (out.ObjectLockLegalHoldStatus === 'ON') return { mode: 'LEGAL HOLD' };
  return undefined;
}

function abortError(): Error {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}
