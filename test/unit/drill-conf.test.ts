import { describe, expect, it } from 'vitest';
import { countsAsApi, drillApiDefinition, drillTykConf } from '../../src/core/tyk/drill-conf.js';

const base = {
  confDir: '/restored/opt/tyk-gateway',
  port: 41234,
  redis: { host: '127.0.0.1', port: 40001, password: 'scratch-pw' },
  appPath: '/work/gateway/apps',
  templatePath: '/opt/tyk-gateway/templates',
  pidFile: '/work/gateway/tyk.pid',
};

describe('drillTykConf: the snapshot tyk.conf pointed at scratch targets only', () => {
  it('rewrites listen, storage, apps, policies and everything that would reach production; keeps the secret and hashing', () => {
    const conf = {
      listen_port: 8080,
      control_api_port: 9696,
      secret: 's3cret',
      hash_keys: true,
      hash_key_function: 'murmur128',
      health_check_endpoint_name: 'health',
      storage: { type: 'redis', host: 'redis.prod', port: 6379, password: 'prod-pw', database: 2, enable_cluster: true, addrs: ['a:1'], use_ssl: true, username: 'tyk', master_name: 'm' },
      cache_storage: { host: 'cache.prod', port: 6380 },
      app_path: 'apps/',
      middleware_path: './middleware',
      policies: { policy_source: 'service', policy_connection_string: 'http://dashboard:3000', policy_record_name: 'policies/policies.json' },
      use_db_app_configs: true,
      db_app_conf_options: { connection_string: 'http://dashboard:3000' },
      slave_options: { use_rpc: true, connection_string: 'mdcb:9091' },
      enable_analytics: true,
      http_server_options: { use_ssl: true, certificates: [] },
    };
    const { conf: c, sourceAppPath, policies } = drillTykConf({ ...base, conf });
    expect(c).toMatchObject({
      listen_address: '127.0.0.1',
      listen_port: 41234,
      secret: 's3cret',
      hash_keys: true,
      hash_key_function: 'murmur128',
      health_check_endpoint_name: 'health',
      storage: { type: 'redis', host: '127.0.0.1', port: 40001, password: 'scratch-pw', database: 2 },
      cache_storage: { host: '127.0.0.1', port: 40001, password: 'scratch-pw' },
      app_path: '/work/gateway/apps/',
      template_path: '/opt/tyk-gateway/templates',
      middleware_path: '/restored/opt/tyk-gateway/middleware',
      policies: { policy_source: 'file', policy_record_name: '/restored/opt/tyk-gateway/policies/policies.json' },
      use_db_app_configs: false,
      slave_options: { use_rpc: false },
      uptime_tests: { disable: true },
      enable_analytics: false,
      http_server_options: { use_ssl: false },
      pid_file_location: '/work/gateway/tyk.pid',
    });
    expect(c).not.toHaveProperty('control_api_port');
    for (const k of ['enable_cluster', 'addrs', 'use_ssl', 'username', 'master_name']) expect(c.storage).not.toHaveProperty(k);
    expect(JSON.stringify(c)).not.toMatch(/redis\.prod|cache\.prod|prod-pw/);
    expect(sourceAppPath).toBe('/restored/opt/tyk-gateway/apps');
    expect(policies).toEqual({ kind: 'file', path: '/restored/opt/tyk-gateway/policies/policies.json' });
    // The input is not changed.
    expect(conf.storage.host).toBe('redis.prod');
  });

  it('uses a policy_path folder when the conf has one, and Tyk defaults when it has neither', () => {
    expect(drillTykConf({ ...base, conf: { policies: { policy_path: 'pols' } } }).policies).toEqual({ kind: 'folder', path: '/restored/opt/tyk-gateway/pols' });
    const bare = drillTykConf({ ...base, conf: {} });
    expect(bare.sourceAppPath).toBe('/restored/opt/tyk-gateway/apps');
    expect(bare.policies.path).toBe('/restored/opt/tyk-gateway/policies/policies.json');
    expect(bare.conf.storage).toEqual({ type: 'redis', host: '127.0.0.1', port: 40001, password: 'scratch-pw' });
  });
});

describe('drillApiDefinition: every upstream is the scratch upstream', () => {
  it('rewrites classic and Tyk OAS upstreams and leaves listen paths and auth alone', () => {
    const classic = drillApiDefinition(
      { api_id: 'a', use_keyless: false, proxy: { listen_path: '/orders/', target_url: 'http://orders.prod', targets: ['http://a', 'http://b'], service_discovery: { use_discovery_service: true, query_endpoint: 'http://consul' } } },
      'http://127.0.0.1:5000',
    );
    expect(classic).toEqual({
      api_id: 'a',
      use_keyless: false,
      proxy: { listen_path: '/orders/', target_url: 'http://127.0.0.1:5000', targets: ['http://127.0.0.1:5000'], service_discovery: { use_discovery_service: false, query_endpoint: 'http://consul' } },
    });
    const oas = drillApiDefinition({ openapi: '3.0.3', 'x-tyk-api-gateway': { server: { listenPath: { value: '/pets/' } }, upstream: { url: 'http://pets.prod' } } }, 'http://127.0.0.1:5000');
    expect(oas['x-tyk-api-gateway']).toEqual({ server: { listenPath: { value: '/pets/' } }, upstream: { url: 'http://127.0.0.1:5000' } });
    expect(drillApiDefinition({ name: 'no proxy' }, 'http://x')).toEqual({ name: 'no proxy' });
  });

  it('counts a Tyk OAS pair (<id>.json, <id>-oas.json) as one API', () => {
    expect(['a.json', 'a-oas.json', 'b.json', 'notes.txt'].filter(countsAsApi)).toEqual(['a.json', 'b.json']);
  });
});
