/**
 * MongoDB connection strings (mongodb:// and mongodb+srv://), taken apart without losing anything the
 * driver or the Database Tools need. The whole string is a secret (it usually carries a password): only
 * `displayUri`/`displayHosts` are fit for messages, manifests and reports.
 */

export interface MongoUri {
  scheme: 'mongodb' | 'mongodb+srv';
  /** Percent-encoded as written. */
  userinfo?: string;
  /** Decoded. */
  username?: string;
  password?: string;
  /** host[:port] entries as written. */
  hosts: string[];
  /** The path database (decoded): the default authentication database. */
  database?: string;
  /** Query options in order, decoded. */
  options: Array<[string, string]>;
}

/** Mechanisms whose users live outside the databases: their default authSource is $external. */
const EXTERNAL_MECHANISMS = new Set(['MONGODB-X509', 'MONGODB-AWS', 'GSSAPI', 'PLAIN', 'MONGODB-OIDC']);
/** Options whose values may carry secrets (e.g. AWS_SESSION_TOKEN in authMechanismProperties). */
const SECRET_OPTION = /pass|token|secret|properties/i;

/** Throws an Error whose message never contains the URI (it is a secret). */
export function parseMongoUri(raw: string): MongoUri {
  const m = /^(mongodb(?:\+srv)?):\/\/(.*)$/s.exec(raw.trim());
  if (!m) throw new Error('it must start with mongodb:// or mongodb+srv://');
  const scheme = m[1] as MongoUri['scheme'];
  let rest = m[2]!;
  // Per the URI spec, "@", "/", ":" and "?" inside credentials are percent-encoded: the authority ends at the
  // first "/" (or "?") after the last "@" that precedes it.
  const slash = rest.search(/[/?]/);
  let authority = slash < 0 ? rest : rest.slice(0, slash);
  rest = slash < 0 ? '' : rest.slice(slash);
  const at = authority.lastIndexOf('@');
  let userinfo: string | undefined;
  if (at >= 0) {
    userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
  }
  const hosts = authority.split(',').filter((h) => h.length > 0);
  if (hosts.length === 0) throw new Error('it names no host');
  let database: string | undefined;
  let query = '';
  if (rest.startsWith('/')) rest = rest.slice(1);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  query = q < 0 ? '' : rest.slice(q + 1);
  if (path) database = decode(path, 'database name');
  const options: Array<[string, string]> = [];
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    options.push(eq < 0 ? [decode(part, 'option'), ''] : [decode(part.slice(0, eq), 'option'), decode(part.slice(eq + 1), 'option value')]);
  }
  const out: MongoUri = { scheme, hosts, options };
  if (database !== undefined) out.database = database;
  if (userinfo !== undefined) {
    out.userinfo = userinfo;
    const colon = userinfo.indexOf(':');
    out.username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), 'user name');
    if (colon >= 0) out.password = decode(userinfo.slice(colon + 1), 'password');
  }
  return out;
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new Error(`its ${what} has an invalid %-escape`);
  }
}

export function option(u: MongoUri, name: string): string | undefined {
  const lower = name.toLowerCase();
  return u.options.find(([k]) => k.toLowerCase() === lower)?.[1];
}

/** The database the user authenticates against, as the driver would choose it. */
export function authSource(u: MongoUri): string | undefined {
  if (u.username === undefined) return undefined;
  const explicit = option(u, 'authSource');
  if (explicit !== undefined) return explicit;
  const mech = option(u, 'authMechanism')?.toUpperCase();
  if (mech && EXTERNAL_MECHANISMS.has(mech)) return '$external';
  return u.database ?? 'admin';
}

/**
 * The URI for mongodump/mongorestore: same credentials, hosts and options, but no path database (the tools
 * refuse one that differs from --db, and mongorestore takes the namespace from --nsInclude) and an explicit
 * authSource: without one the tools authenticate against the --db database, unlike the driver.
 */
export function toolUri(u: MongoUri): string {
  const opts = [...u.options];
  const src = authSource(u);
  if (src !== undefined && option(u, 'authSource') === undefined) opts.push(['authSource', src]);
  const query = opts.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${u.scheme}://${u.userinfo !== undefined ? `${u.userinfo}@` : ''}${u.hosts.join(',')}/${query ? `?${query}` : ''}`;
}

/** host:port list, for messages. */
export function displayHosts(u: MongoUri): string {
  return u.hosts.join(',');
}

/** The URI without password and without values of secret-looking options, for manifests and reports. */
export function displayUri(u: MongoUri): string {
  const user = u.username !== undefined ? `${encodeURIComponent(u.username)}${u.password !== undefined ? ':[redacted]' : ''}@` : '';
  const query = u.options.map(([k, v]) => `${k}=${SECRET_OPTION.test(k) ? '[redacted]' : v}`).join('&');
  return `${u.scheme}://${user}${u.hosts.join(',')}/${u.database ?? ''}${query ? `?${query}` : ''}`;
}

/** Removes credentials from any connection string in `text`, and every listed secret. */
export function scrubMongoText(text: string, secrets: Array<string | undefined>): string {
  let out = text.replace(/(mongodb(?:\+srv)?:\/\/)[^\s/@]*@/g, '$1[redacted]@');
  for (const s of secrets) if (s && s.length >= 3) out = out.split(s).join('[redacted]');
  return out;
}
