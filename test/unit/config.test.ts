import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/core/config/load.js';
import { configJsonSchemaText } from '../../src/core/config/json-schema.js';
import { configTemplate } from '../../src/core/config/template.js';
import { TykdrError } from '../../src/core/errors.js';
import { repoRoot } from '../helpers/paths.js';

const base = `
store: { kind: local, path: ./backups }
encryption: { recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p] }
components:
  redis: { kind: redis, host: 10.0.0.5, password: "\${REDIS_PW}" }
`;

function error(fn: () => unknown): TykdrError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TykdrError);
    return err as TykdrError;
  }
  throw new Error('expected an error');
}

describe('config', () => {
  it('loads, applies defaults, resolves paths against the file and wraps secrets', () => {
    const c = parseConfig(base, '/etc/tykdr/tykdr.yaml', { REDIS_PW: 'hunter2' });
    expect(c.store).toEqual({ kind: 'local', path: '/etc/tykdr/backups' });
    const r = c.components.redis!;
    expect(r.kind).toBe('redis');
    if (r.kind !== 'redis') throw new Error('kind');
    expect(r.port).toBe(6379);
    expect(r.tier).toBe('critical');
    expect(r.password?.reveal()).toBe('hunter2');
    expect(JSON.stringify(c)).not.toContain('hunter2');
    expect(String(r.password)).toBe('[redacted]');
    expect(c.tiers.critical).toEqual({ rtoMs: 15 * 60_000, rpoMs: 5 * 60_000 });
    expect(c.tiers.development.rpoMs).toBe(24 * 3_600_000);
    expect(c.compression).toEqual({ algorithm: 'zstd', level: 3 });
  });

  it('names the missing environment variable, the file and the line', () => {
    const e = error(() => parseConfig(base, '/x/tykdr.yaml', {}));
    expect(e.kind).toBe('badInput');
    expect(e.message).toContain('/x/tykdr.yaml, line 5');
    expect(e.message).toContain('${REDIS_PW}');
    expect(e.fix).toContain('export REDIS_PW');
  });

  it('accepts ${VAR:-default}', () => {
    const c = parseConfig(base.replace('${REDIS_PW}', '${REDIS_PW:-fallback}'), '/x.yaml', {});
    expect((c.components.redis as { password?: { reveal(): string } }).password?.reveal()).toBe('fallback');
  });

  it('rejects unknown keys with path, line and fix', () => {
    const e = error(() => parseConfig(base.replace('host: 10.0.0.5', 'host: 10.0.0.5, colour: blue'), '/x.yaml', { REDIS_PW: 'p' }));
    expect(e.message).toContain('/x.yaml, line 5: unknown key "colour" in components.redis');
    expect(e.fix).toContain('"colour"');
  });

  it('an unknown key beside a secret names the path and the key, never the section or the secret', () => {
    const beside = error(() => parseConfig(base.replace('host: 10.0.0.5', 'host: 10.0.0.5, bogus: 1'), '/x.yaml', { REDIS_PW: 'hunter2-secret' }));
    expect(beside.message).toBe('/x.yaml, line 5: unknown key "bogus" in components.redis');
    const topLevel = error(() => parseConfig(`${base}bogus: 1\n`, '/x.yaml', { REDIS_PW: 'hunter2-secret' }));
    expect(topLevel.message).toBe('/x.yaml, line 6: unknown key "bogus" at the top level');
    for (const e of [beside, topLevel]) {
      expect(`${e.message} ${e.fix}`).not.toContain('hunter2-secret');
      expect(e.message).not.toContain('10.0.0.5');
    }
  });

  it('never echoes a value read from the environment, whatever its key', () => {
    const e = error(() => parseConfig(base.replace('host: 10.0.0.5', 'host: 10.0.0.5, port: "${REDIS_PORT}"'), '/x.yaml', { REDIS_PW: 'p', REDIS_PORT: 'hunter2-port' }));
    expect(e.message).toContain('components.redis.port (value hidden)');
    expect(e.message).not.toContain('hunter2-port');
  });

  it('reports a bad value with its path, line and the value itself', () => {
    const text = base.replace('host: 10.0.0.5', 'host: 10.0.0.5, port: "six"');
    const e = error(() => parseConfig(text, '/x.yaml', { REDIS_PW: 'p' }));
    expect(e.message).toContain('/x.yaml, line 5: components.redis.port "six"');
  });

  it('hides secret values in errors', () => {
    const text = base.replace('password: "${REDIS_PW}"', 'password: 12345');
    const e = error(() => parseConfig(text, '/x.yaml', {}));
    expect(e.message).toContain('components.redis.password (value hidden)');
    expect(e.message).not.toContain('12345');
  });

  it('rejects an unknown tier and an empty component list', () => {
    expect(error(() => parseConfig(base.replace('kind: redis,', 'kind: redis, tier: gold,'), '/x.yaml', { REDIS_PW: 'p' })).message).toContain(
      'components.redis.tier "gold"',
    );
    expect(error(() => parseConfig('store: {kind: local, path: x}\nencryption: {}\ncomponents: {}\n', '/x.yaml')).message).toContain(
      'configure at least one component',
    );
  });

  it('reports YAML syntax errors with a line', () => {
    expect(error(() => parseConfig('store: [unclosed\n', '/x.yaml')).message).toMatch(/\/x\.yaml, line \d+: YAML syntax error/);
  });

  it('the init template is valid once a recipient is filled in', () => {
    const text = configTemplate({ recipient: 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p' });
    const c = parseConfig(text, '/etc/tykdr/tykdr.yaml');
    expect(Object.keys(c.components)).toEqual(['redis', 'config']);
  });

  it("the init template's drill.gateway example is valid once uncommented", () => {
    const text = configTemplate({ recipient: 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p' });
    const lines = text.split('\n');
    const start = lines.indexOf('# drill:');
    expect(start).toBeGreaterThan(0);
    let end = start;
    while (lines[end]!.startsWith('#')) end++;
    const uncommented = [...lines.slice(0, start), ...lines.slice(start, end).map((l) => l.replace(/^# ?/, '')), ...lines.slice(end)].join('\n');
    const c = parseConfig(uncommented, '/etc/tykdr/tykdr.yaml');
    expect(c.drill.gateway).toEqual({ binary: '/opt/tyk-gateway/tyk', templates: '/opt/tyk-gateway/templates', startTimeout: '60s' });
  });

  it('drill.gateway: a relative binary is resolved from the config file; a bad startTimeout names the path', () => {
    const base = configTemplate({ recipient: 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p' });
    expect(parseConfig(`${base}\ndrill: { gateway: { binary: ./bin/tyk } }\n`, '/etc/tykdr/tykdr.yaml').drill.gateway?.binary).toBe('/etc/tykdr/bin/tyk');
    expect(parseConfig(`${base}\ndrill: { gateway: { binary: tyk } }\n`, '/etc/tykdr/tykdr.yaml').drill.gateway?.binary).toBe('tyk');
    expect(error(() => parseConfig(`${base}\ndrill: { gateway: { binary: tyk, startTimeout: soon } }\n`, '/x.yaml')).message).toMatch(/drill\.gateway\.startTimeout/);
  });

  it('the published JSON Schema is up to date (npm run schema regenerates it)', () => {
    const committed = readFileSync(path.join(repoRoot, 'schema/tykdr.schema.json'), 'utf8');
    expect(committed).toBe(configJsonSchemaText());
  });
});

describe('config purposes: an unset ${VAR} in a part the command does not read is no error', () => {
  const wide = `
store: { kind: local, path: "\${STORE_DIR}" }
encryption:
  recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
  identityFile: "\${IDENTITY_FILE}"
components:
  redis: { kind: redis, host: 10.0.0.5, password: "\${REDIS_PW}" }
  mongo: { kind: mongo, uri: "\${MONGO_URI}" }
gateway:
  url: "\${GATEWAY_URL}"
  keyProbe: { path: /orders/, key: "\${CANARY_KEY}" }
  uptimeTests: { checkList: [{ url: "\${UPSTREAM_URL}" }] }
retention: { keepLast: 3 }
`;
  const env = { STORE_DIR: '/srv/store', IDENTITY_FILE: '/secure/id.txt' };

  it('store: only the store is read; values that are invalid when empty (a MongoDB URI, URLs) take their defaults', () => {
    const c = parseConfig(wide, '/x/tykdr.yaml', { STORE_DIR: '/srv/store' }, 'store');
    expect(c.store).toEqual({ kind: 'local', path: '/srv/store' });
    const mongo = c.components.mongo!;
    if (mongo.kind !== 'mongo') throw new Error('kind');
    expect(mongo.uri.reveal()).toBe('mongodb://127.0.0.1:27017');
    expect(c.gateway?.url).toBe('http://127.0.0.1:8080');
    expect(c.gateway?.uptimeTests).toBeUndefined();
    expect(c.gateway?.keyProbe?.key.reveal()).toBe('');
    expect(c.components.redis).toBeDefined();
  });

  it('store: an unset variable of the store itself is an error naming it', () => {
    const e = error(() => parseConfig(wide, '/x/tykdr.yaml', {}, 'store'));
    expect(e.message).toContain('store.path refers to environment variable ${STORE_DIR}');
  });

  it('decrypt: the identity file must be set, unless the caller reads it elsewhere (--identity)', () => {
    const e = error(() => parseConfig(wide, '/x/tykdr.yaml', { STORE_DIR: '/s' }, 'decrypt'));
    expect(e.message).toContain('/x/tykdr.yaml, line 5: encryption.identityFile refers to environment variable ${IDENTITY_FILE}');
    expect(parseConfig(wide, '/x/tykdr.yaml', env, 'decrypt').encryption.identityFile).toBe('/secure/id.txt');
    expect(parseConfig(wide, '/x/tykdr.yaml', { STORE_DIR: '/s' }, 'decrypt', ['encryption.identityFile']).store).toMatchObject({ path: '/s' });
  });

  it('retention: prune reads the retention settings, so their variables must be set', () => {
    const text = wide.replace('keepLast: 3', 'keepLast: "${KEEP_LAST}"');
    const e = error(() => parseConfig(text, '/x/tykdr.yaml', env, 'retention'));
    expect(e.message).toContain('retention.keepLast refers to environment variable ${KEEP_LAST}');
    expect(parseConfig(text, '/x/tykdr.yaml', env, 'store').retention.keepLast).toBe(3);
  });

  it('backup: components must be set (the variable is named, no value shown), the gateway and the identity file need not', () => {
    const e = error(() => parseConfig(wide, '/x/tykdr.yaml', { ...env, MONGO_URI: 'mongodb://u:s3cr3t-val@h/' }, 'backup'));
    expect(e.message).toContain('components.redis.password refers to environment variable ${REDIS_PW}, which is not set');
    expect(e.message).not.toContain('s3cr3t-val');
    const unsetMongo = error(() => parseConfig(wide, '/x/tykdr.yaml', { ...env, REDIS_PW: 'p' }, 'backup'));
    expect(unsetMongo.message).toContain('components.mongo.uri refers to environment variable ${MONGO_URI}');
    const c = parseConfig(wide, '/x/tykdr.yaml', { STORE_DIR: '/s', REDIS_PW: 'p', MONGO_URI: 'mongodb://h/' }, 'backup');
    expect(c.encryption.identityFile).toBe('/x');
  });

  it('a misspelt key stays an error even in a part the command does not read', () => {
    const text = wide.replace('  url: "${GATEWAY_URL}"', '  url: "${GATEWAY_URL}"\n  colour: blue');
    const e = error(() => parseConfig(text, '/x/tykdr.yaml', env, 'store'));
    expect(e.fix).toContain('"colour"');
  });

  it('an emptied value that cannot be left out is reported as the unset variable', () => {
    // The only component needs its roots: leaving it out leaves no component at all.
    const text = `store: { kind: local, path: /s }
encryption: { recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p] }
components:
  gw: { kind: files, roots: ["\${GATEWAY_ROOT}"] }
`;
    const e = error(() => parseConfig(text, '/x/tykdr.yaml', {}, 'store'));
    expect(e.message).toContain('/x/tykdr.yaml, line 4: components.gw.roots.0 refers to environment variable ${GATEWAY_ROOT}, which is not set');
    // A port emptied in a part not read is simply left out: its default applies.
    const port = parseConfig(wide.replace('host: 10.0.0.5,', 'port: "${REDIS_PORT}",'), '/x/tykdr.yaml', env, 'store').components.redis!;
    expect(port.kind === 'redis' && port.port).toBe(6379);
  });
});
