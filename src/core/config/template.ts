/**
 * The commented tykdr.yaml that `tykdr init` writes. Keep it valid: a test loads it, and loads it again with each
 * commented example uncommented (test/unit/config-template.test.ts). Prose comments must not start with `word:`.
 */
export function configTemplate(opts: { recipient?: string; storePath?: string } = {}): string {
  const recipient = opts.recipient ?? 'age1REPLACE-with-the-output-of-tykdr-key-generate';
  return `# tykdr configuration. Schema: schema/tykdr.schema.json in the tykdr package
# (editors with the YAML language server complete and check this file).
# \${ENV_VAR} is replaced from the environment; \${ENV_VAR:-default} gives a fallback.
# Never write passwords or keys here: use \${ENV_VAR}.
version: 1

# Where snapshots go. A local folder:
store:
  kind: local
  path: ${opts.storePath ?? './tykdr-backups'}
# ...or an S3 bucket (or an S3-compatible service such as MinIO):
# store:
#   kind: s3
#   bucket: my-tyk-backups
#   prefix: prod/
#   region: eu-west-1
#   # endpoint: http://127.0.0.1:9000     # S3-compatible services only
#   # forcePathStyle: true                # usually needed with endpoint
#   # serverSideEncryption: aws:kms       # or AES256 (SSE-S3)
#   # kmsKeyId: arn:aws:kms:...
#   # storageClass: STANDARD_IA
#   # Credentials come from the standard AWS chain (env, profile, instance role), or set them here:
#   # accessKeyId: \${AWS_ACCESS_KEY_ID}
#   # secretAccessKey: \${AWS_SECRET_ACCESS_KEY}

# Off-site copies: more stores by name (the store above is "primary"). The daemon copies every new snapshot
# to each one with auto: true; restore and drill fall back to them when the primary cannot be used.
# copies:
#   offsite:
#     kind: s3
#     bucket: my-tyk-backups-dr
#     region: eu-central-1
#     auto: true

# Every snapshot is encrypted on this host with age (https://age-encryption.org).
# Only public recipients are needed to back up; keep the identity (private key) elsewhere.
encryption:
  recipients:
    - ${recipient}
  # recipientsFile: ./recipients.txt       # one age1... per line
  # identityFile: /secure/tykdr-identity.txt # needed only to restore and verify
  # passphrase: { env: TYKDR_PASSPHRASE }    # instead of recipients (not both)

compression:
  algorithm: zstd   # or gzip
  level: 3

# Recovery objectives per tier (defaults from Tyk's DR guidance):
# tiers:
#   critical:    { rto: 15m, rpo: 5m }
#   important:   { rto: 1h,  rpo: 15m }
#   standard:    { rto: 4h,  rpo: 1h }
#   development: { rto: 24h, rpo: 24h }

components:
  # The gateway's Redis: API keys, OAuth clients, certificates.
  redis:
    kind: redis
    tier: critical
    host: 127.0.0.1
    port: 6379
    # username: tykdr                  # ACL user with +ping +info +sync +replconf
    # password: \${TYK_REDIS_PASSWORD}
    # db: 0                            # the database index Tyk uses
    # tls: { enabled: true, ca: /etc/ssl/redis-ca.pem }
    # sentinel:
    #   masterName: mymaster
    #   sentinels: [{ host: 10.0.0.1, port: 26379 }, { host: 10.0.0.2, port: 26379 }]
    #   fromReplica: true              # spare the master

  # Gateway and Dashboard configuration files.
  config:
    kind: files
    tier: important
    roots:
      - /opt/tyk-gateway
    include:
      - tyk.conf
      - apps/**
      - policies/**
      - templates/**
      - middleware/**
      - certs/**
      - tyk_analytics.conf
      - pump.conf
    exclude:
      - "**/*.log"

  # The Dashboard's database: PostgreSQL (Dashboard 4.0+)...
  # dashboard-db:
  #   kind: postgres
  #   tier: important
  #   host: 127.0.0.1
  #   database: tyk_analytics
  #   username: tyk
  #   password: \${TYK_PG_PASSWORD}
  #   globals: false                   # true: also roles and tablespaces (needs a superuser)
  # ...or MongoDB:
  # dashboard-db:
  #   kind: mongo
  #   uri: \${TYK_MONGO_URI}           # mongodb://user:password@host:27017/
  #   database: tyk_analytics

# What restores and drills verify against (see docs/RESTORE.md):
# gateway:
#   url: http://127.0.0.1:8080
#   restartCommand: systemctl restart tyk-gateway
#   keyProbe: { path: /orders/, key: "\${TYK_CANARY_KEY}" }   # quoted: \${...} inside { } needs quotes
#   uptimeTests: { checkList: [ { url: "http://orders.internal/health" } ] }
# dashboard:
#   url: http://127.0.0.1:3000
#   restartCommand: systemctl restart tyk-dashboard

# Drills (\`tykdr drill\`, docs/DRILLS.md): with a Tyk Gateway binary, a drill starts it against the scratch
# Redis and the restored apps/ and policies/ and proves the canary key is served; without it the report
# says "gateway not proven". The keyProbe of the gateway section above is the canary.
# drill:
#   gateway:
#     binary: /opt/tyk-gateway/tyk
#     templates: /opt/tyk-gateway/templates   # default: the snapshot's templates/, else beside the binary
#     startTimeout: 60s

# Signed manifests and reports (docs/FORMAT.md). On the host that backs up or drills: an Ed25519 key
# from \`tykdr key generate --signing --output /etc/tykdr/signing-key.pem\` (mode 0600; it signs every
# manifest and report). Wherever snapshots are restored or checked: the public keys it printed. With
# verifyKeys set, restore, drill and verify refuse a snapshot whose manifest no listed key signed.
# signing:
#   keyFile: /etc/tykdr/signing-key.pem
#   verifyKeys:
#     - tykdr-ed25519:xhjQuDCqzHvTWdSeTHMypi5Hc6l8NATyO7fY2zYED2g=   # an example: put your own key's line here
# Restore and drill reports (audit evidence) younger than this are never pruned, whatever happens to
# their snapshots:
# evidence: { keepWithin: 400d }

# tykdr daemon (see docs/DAEMON.md). Backups default to an interval within each tier's RPO.
# schedule:
#   backups: { redis: "*/5 * * * *" }
# retention: { keepLast: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12 }
# health: { listen: 127.0.0.1:9187 }
# notifications:
#   webhooks: [ { url: https://hooks.example.com/tykdr, headers: { Authorization: "Bearer \${HOOK_TOKEN}" } } ]
`;
}
