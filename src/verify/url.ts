/** `base` + `path` with exactly one slash between them; a path on the base (e.g. behind a proxy) is kept. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`);
}

const CREDENTIAL_PARAM = /key|token|secret|pass|auth|sig|credential|session|code/i;

/**
 * A URL fit for reports: user-info removed and the values of credential-like query parameters
 * (apikey, token, signature, ...) replaced. Unparseable input is reduced to "(invalid URL)".
 */
export function safeUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return '(invalid URL)';
  }
  u.username = '';
  u.password = '';
  for (const name of [...new Set(u.searchParams.keys())]) {
    if (CREDENTIAL_PARAM.test(name)) u.searchParams.set(name, 'redacted');
  }
  return u.toString();
}
