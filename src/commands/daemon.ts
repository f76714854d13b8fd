import { Flags } from '@oclif/core';
import { EXIT_CODES_HELP, TykdrCommand, graceFromEnv } from '../cli/base-command.js';
import { MAX_TIMER_MS } from '../core/duration.js';
import { badInput } from '../core/errors.js';
import { JOB_KINDS, type JobKind } from '../daemon/jobs.js';
import { jsonLogger, secretValues } from '../daemon/log.js';
import { realJobs } from '../daemon/real-jobs.js';
import { runDaemon, shutdownSignals } from '../daemon/service.js';

export default class Daemon extends TykdrCommand<typeof Daemon> {
  // The daemon always logs one JSON object per line; --json (as every command has) makes an error that stops
  // it before it runs (bad flags, bad config) a JSON object on stdout too.
  static override enableJsonFlag = true;

  static override summary = 'Run backups, retention, verification and drills on schedule, with health, metrics and webhooks.';
  static override description = `Schedules backups per component (by default at an interval no longer than each tier's RPO; schedule.backups overrides), prune, verify and drills (schedule.*). Several daemons may run: one is elected leader through a lock in Redis (leader.*, by default the first redis component) and runs the jobs; the others take over within leader.ttl if it dies.

Serves GET /hello (backup health per component, Health Check Response Format as Tyk's gateway: 200 pass/warn, 503 fail) and GET /metrics (Prometheus) on health.listen; sends webhooks (notifications.webhooks) on backup_failed, rpo_breached, drill_failed and drill_passed. Logs one JSON object per line on stdout; with --json an error that stops it before it starts (bad flags or config) is a JSON object there too.

SIGTERM or SIGINT stops scheduling and lets a running job finish for --grace seconds, then aborts it (its partial snapshot is removed; the clean-up gets TYKDR_GRACE seconds, default 10); the lock is released. A second signal aborts running jobs at once, a third exits at once. Whatever hangs, the daemon exits within --grace + TYKDR_GRACE + 10 s (webhook flush) of the first signal. Exit code 0 after a clean stop, 130 when a job had to be aborted. See docs/DAEMON.md.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> daemon --config /etc/tykdr/tykdr.yaml',
    '<%= config.bin %> daemon --once --job backup        # one backup now if this instance is leader, then exit',
    '<%= config.bin %> daemon --no-leader --grace 120',
  ];

  static override flags = {
    once: Flags.boolean({ summary: 'Run every job once now (respecting leadership), then exit with the first failure\'s code.' }),
    grace: Flags.integer({ summary: 'Seconds a running job may take to finish after SIGTERM before it is aborted.', default: 30, min: 0 }),
    'instance-id': Flags.string({ summary: 'Name of this daemon in the lock, logs and metrics (default: hostname-pid).' }),
    leader: Flags.boolean({ summary: 'Elect a leader through Redis (--no-leader: this is the only daemon; no lock).', default: true, allowNo: true }),
    job: Flags.string({ summary: 'Run only these jobs (repeatable).', multiple: true, options: [...JOB_KINDS] }),
  };

  async run(): Promise<void> {
    const abortGraceMs = graceFromEnv();
    // The stop deadline is one timer of --grace + TYKDR_GRACE + 10 s (webhook flush): past Node's limit it would fire at once.
    const maxGrace = Math.floor((MAX_TIMER_MS - abortGraceMs - 10_000) / 1000);
    if (this.flags.grace > maxGrace) {
      throw badInput(
        `--grace ${this.flags.grace} is longer than the daemon can wait: with TYKDR_GRACE (${abortGraceMs / 1000} s) and the webhook flush (10 s) the stop deadline must stay under ${Math.floor(MAX_TIMER_MS / 1000)} s (about 24.8 days)`,
        `give --grace at most ${maxGrace} (seconds)`,
      );
    }
    const config = await this.loadConfig('all');
    const log = jsonLogger({
      level: this.flags.debug ? 'debug' : 'info',
      secrets: [...secretValues(config), ...config.notifications.webhooks.map((w) => w.url)],
    });
    const graceMs = this.flags.grace * 1000;
    const signals = shutdownSignals(log, graceMs, abortGraceMs);
    try {
      process.exitCode = await runDaemon({
        config,
        jobs: realJobs(config, log),
        log,
        instanceId: this.flags['instance-id'],
        useLeader: this.flags.leader,
        once: this.flags.once,
        only: (this.flags.job ?? []) as JobKind[],
        graceMs,
        abortGraceMs,
        stop: signals.stop,
        force: signals.force,
      });
    } finally {
      signals.dispose();
    }
  }
}
