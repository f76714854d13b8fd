import cron from 'node-cron';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/core/config/load.js';
import { TykdrError } from '../../src/core/errors.js';
import { backupGroups, cronForRpo, jobSpecs } from '../../src/daemon/schedule.js';

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const config = (extra = '') =>
  parseConfig(
    `
store: { kind: local, path: ./backups }
encryption: { recipients: [${RECIPIENT}] }
components:
  redis: { kind: redis }
  config: { kind: files, roots: [/opt/tyk-gateway] }
  dash: { kind: files, roots: [/opt/tyk-dashboard], role: dashboard }
${extra}`,
    '/etc/tykdr/tykdr.yaml',
    {},
  );

function error(fn: () => unknown): TykdrError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TykdrError);
    return err as TykdrError;
  }
  throw new Error('expected an error');
}

/** Largest gap between consecutive slots of an expression, from node-cron itself. */
function maxGapMs(expr: string): number {
  const task = cron.createTask(expr, () => {});
  try {
    const runs = task.getNextRuns(40).map((d) => d.getTime());
    return Math.max(...runs.slice(1).map((t, i) => t - runs[i]!));
  } finally {
    void task.destroy();
  }
}

describe('default backup interval from the RPO', () => {
  it('maps the Tyk tiers to steady intervals', () => {
    expect(cronForRpo(5 * 60_000)).toBe('*/5 * * * *');
    expect(cronForRpo(15 * 60_000)).toBe('*/15 * * * *');
    expect(cronForRpo(3_600_000)).toBe('0 * * * *');
    expect(cronForRpo(24 * 3_600_000)).toBe('0 2 * * *');
  });

  it('rounds other values down to an interval that divides its unit', () => {
    expect(cronForRpo(500)).toBe('* * * * * *');
    expect(cronForRpo(1000)).toBe('* * * * * *');
    expect(cronForRpo(2000)).toBe('*/2 * * * * *');
    expect(cronForRpo(59_000)).toBe('*/30 * * * * *');
    expect(cronForRpo(60_000)).toBe('* * * * *');
    expect(cronForRpo(90_000)).toBe('* * * * *');
    expect(cronForRpo(7 * 60_000)).toBe('*/6 * * * *');
    expect(cronForRpo(45 * 60_000)).toBe('*/30 * * * *');
    expect(cronForRpo(90 * 60_000)).toBe('0 * * * *');
    expect(cronForRpo(5 * 3_600_000)).toBe('0 */4 * * *');
    expect(cronForRpo(10 * 3_600_000)).toBe('0 */8 * * *');
    expect(cronForRpo(7 * 86_400_000)).toBe('0 2 * * *');
  });

  it('never leaves a gap longer than the RPO (from 1 s up), as node-cron schedules it', () => {
    const rpos = [1, 2, 7, 13, 30, 59, 60, 61, 119, 300, 420, 900, 1799, 3600, 5400, 7200, 18_000, 43_200, 86_399, 86_400, 200_000].map((s) => s * 1000);
    for (const rpo of rpos) {
      const expr = cronForRpo(rpo);
      expect(cron.validate(expr), expr).toBe(true);
      expect(maxGapMs(expr), `${rpo} ms -> ${expr}`).toBeLessThanOrEqual(Math.max(rpo, 1000));
    }
  });
});

describe('backup groups', () => {
  it('derives one cron per tier and groups the components that share it', () => {
    const groups = backupGroups(config());
    expect(groups).toEqual([
      { cron: '*/5 * * * *', components: ['redis'], reasons: ['redis: RPO 5m (tier critical)'] },
      { cron: '*/15 * * * *', components: ['config', 'dash'], reasons: ['config: RPO 15m (tier important)', 'dash: RPO 15m (tier important)'] },
    ]);
  });

  it('follows tier overrides', () => {
    const groups = backupGroups(config('tiers: { critical: { rto: 1m, rpo: 2s } }'));
    expect(groups[0]).toMatchObject({ cron: '*/2 * * * * *', components: ['redis'] });
  });

  it('lets schedule.backups override per component, then "*"', () => {
    const groups = backupGroups(config(`schedule: { backups: { '*': '0 */6 * * *', redis: '*/1 * * * *' } }`));
    expect(groups).toEqual([
      { cron: '*/1 * * * *', components: ['redis'], reasons: ['redis: schedule.backups.redis'] },
      { cron: '0 */6 * * *', components: ['config', 'dash'], reasons: ['config: schedule.backups.*', 'dash: schedule.backups.*'] },
    ]);
  });

  it('puts everything in one run when "*" is given alone', () => {
    const groups = backupGroups(config(`schedule: { backups: { '*': '* * * * * *' } }`));
    expect(groups).toHaveLength(1);
    expect(groups[0]!.components).toEqual(['redis', 'config', 'dash']);
  });

  it('rejects unknown component names and bad expressions, naming path, value and fix', () => {
    let e = error(() => backupGroups(config(`schedule: { backups: { redsi: '* * * * *' } }`)));
    expect(e.kind).toBe('badInput');
    expect(e.message).toContain('schedule.backups.redsi');
    expect(e.fix).toContain('redis, config, dash');
    e = error(() => backupGroups(config(`schedule: { backups: { redis: '61 * * * *' } }`)));
    expect(e.message).toContain('schedule.backups.redis "61 * * * *" in /etc/tykdr/tykdr.yaml is not a valid cron expression');
    expect(e.message).toContain('minute');
    expect(e.fix).toContain('*/5 * * * *');
  });
});

describe('job specs', () => {
  it('lists backups, prune, verify and drills with their crons', () => {
    const specs = jobSpecs(config());
    expect(specs.map((s) => [s.name, s.cron])).toEqual([
      ['backup:redis', '*/5 * * * *'],
      ['backup:config,dash', '*/15 * * * *'],
      ['prune', '17 * * * *'],
      ['verify', '40 3 * * *'],
      ['drill-components', '0 4 1 * *'],
      ['drill-full', '0 5 1 1,4,7,10 *'],
    ]);
    expect(specs.find((s) => s.name === 'verify')!.task).toEqual({ kind: 'verify', samplePercent: 10 });
  });

  it('keeps only the kinds asked for', () => {
    expect(jobSpecs(config(), ['backup', 'drill-full']).map((s) => s.name)).toEqual(['backup:redis', 'backup:config,dash', 'drill-full']);
  });

  it('validates every schedule', () => {
    const e = error(() => jobSpecs(config(`schedule: { prune: 'hourly' }`)));
    expect(e.message).toContain('schedule.prune "hourly"');
  });
});
