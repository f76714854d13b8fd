import type { MongoClient } from 'mongodb';
import { parseDuration } from '../../core/duration.js';
import { badInput, isAbortError, TykdrError, type ErrorKind } from '../../core/errors.js';
import type { MongoComponent } from '../../core/config/load.js';
import type { Secret } from '../../core/secret.js';
import { mongoDriver } from './driver.js';
import { authSource, displayHosts, parseMongoUri, scrubMongoText, type MongoUri } from './uri.js';

/** Which side of tykdr is talking to MongoDB: errors get that side's exit code and wording. */
export type MongoSide = 'source' | 'target';

export interface MongoEndpoint {
  /** The connection string, revealed only here and when a tool is started. */
  secret: Secret;
  parsed: MongoUri;
  /** Config path of the URI, for messages: components.NAME.uri or components.NAME.restore.uri. */
  configPath: string;
  side: MongoSide;
  timeoutMs: number;
}

/** Parses the configured URI; an invalid one is bad input (message without the URI: it is secret). */
export function endpoint(c: MongoComponent, side: MongoSide): MongoEndpoint {
  const useRestore = side === 'target' && c.restore.uri !== undefined;
  const secret = useRestore ? c.restore.uri! : c.uri;
  const configPath = `components.${c.name}.${useRestore ? 'restore.uri' : 'uri'}`;
  let parsed: MongoUri;
  try {
    parsed = parseMongoUri(secret.reveal());
  } catch (err) {
    throw badInput(`${configPath} is not a valid MongoDB connection string: ${(err as Error).message}`, 'write it as mongodb://USER:PASSWORD@HOST:PORT/?authSource=admin (percent-encode @ : / ? in the password)');
  }
  return { secret, parsed, configPath, side, timeoutMs: parseDuration(c.connectTimeout) ?? 10_000 };
}

/** Connects (and authenticates) with the official driver; failures are explained, never leak the URI. */
export async function connectMongo(ep: MongoEndpoint, signal?: AbortSignal): Promise<MongoClient> {
  signal?.throwIfAborted();
  let client: MongoClient;
  try {
    client = new (mongoDriver().MongoClient)(ep.secret.reveal(), {
      serverSelectionTimeoutMS: ep.timeoutMs,
      connectTimeoutMS: ep.timeoutMs,
      appName: 'tykdr',
    });
  } catch (err) {
    throw explainMongoError(err, ep);
  }
  const onAbort = () => void client.close(true).catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.close(true).catch(() => undefined);
    if (signal?.aborted) throw signal.reason ?? err;
    throw explainMongoError(err, ep);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

export interface ServerFacts {
  version: string;
  /** Set when the server is FerretDB: its buildInfo carries `ferretdbVersion`. */
  ferretdbVersion?: string;
}

export async function serverFacts(client: MongoClient): Promise<ServerFacts> {
  const info = await client.db('admin').command({ buildInfo: 1 });
  const out: ServerFacts = { version: String(info.version ?? 'unknown') };
  if (typeof info.ferretdbVersion === 'string') out.ferretdbVersion = info.ferretdbVersion;
  return out;
}

/**
 * A driver error as a TykdrError: unreachable host, refused credentials, missing privileges. Source
 * errors exit 3 (sourceUnreachable), target errors 6 (targetError). Messages name the hosts and the user,
 * never the password.
 */
export function explainMongoError(err: unknown, ep: MongoEndpoint, doing?: string): unknown {
  if (err instanceof TykdrError || isAbortError(err)) return err;
  const kind: ErrorKind = ep.side === 'source' ? 'sourceUnreachable' : 'targetError';
  const hosts = displayHosts(ep.parsed);
  const what = `MongoDB at ${hosts}`;
  const user = ep.parsed.username;
  const scrubbed = scrubMongoText((err as Error)?.message ?? String(err), [ep.parsed.password, ep.secret.reveal()]);
  const { MongoParseError, MongoServerError, MongoServerSelectionError } = mongoDriver();
  if (err instanceof MongoParseError) {
    return badInput(`${ep.configPath} is not a valid MongoDB connection string: ${scrubbed}`, 'fix the connection string (see https://www.mongodb.com/docs/manual/reference/connection-string/)');
  }
  if (err instanceof MongoServerSelectionError) {
    return new TykdrError(kind, `cannot reach ${what} (${scrubbed})`, {
      fix: `check the hosts in ${ep.configPath}, that MongoDB is running, and that this host may connect to it (firewall, TLS options)`,
      cause: err,
    });
  }
  if (err instanceof MongoServerError && (err.code === 18 || err.codeName === 'AuthenticationFailed')) {
    return new TykdrError(kind, `${what} refused the credentials of user "${user ?? '(none)'}" (authSource ${authSource(ep.parsed) ?? 'none'}): ${scrubbed}`, {
      fix: `check the user name and password in ${ep.configPath} (use \${ENV_VAR} for the password) and its authSource`,
      cause: err,
    });
  }
  if (err instanceof MongoServerError && (err.code === 13 || err.codeName === 'Unauthorized')) {
    return new TykdrError(kind, `${what} refused ${doing ?? 'a command'} for ${user ? `user "${user}"` : 'an unauthenticated client'}: ${scrubbed}`, {
      fix: user
        ? `grant the user the ${ep.side === 'source' ? '"backup" role (or read on the database)' : '"restore" role (or readWrite and dbAdmin on the database)'}`
        : `put a user and password in ${ep.configPath} (use \${ENV_VAR} for the password)`,
      cause: err,
    });
  }
  return new TykdrError(kind, `${what}: ${doing ? `${doing} failed: ` : ''}${scrubbed}`, { cause: err });
}
