import cron from 'node-cron';
import type { Logger } from './log.js';

export interface Ticker {
  stop(): void;
}

/**
 * Calls `tick` at every slot of a cron expression until stopped. Contract: `tick` is called
 * synchronously and never awaited, so the scheduler itself never delays, queues or skips slots;
 * overlap handling belongs to the caller (job-runner.ts).
 */
export interface Scheduler {
  schedule(name: string, expression: string, tick: () => void): Ticker;
}

/** node-cron 4 as the clock (local time zone, or TZ). Its own warnings go to our log. */
export function cronScheduler(log: Logger): Scheduler {
  const logger = {
    info: (m: string) => log.debug(`node-cron: ${m}`),
    warn: (m: string) => log.warn(`node-cron: ${m}`),
    error: (m: string | Error) => log.error('node-cron error', { error: m }),
    debug: (m: string | Error) => log.debug(`node-cron: ${String(m)}`),
  };
  return {
    schedule(name, expression, tick) {
      const task = cron.schedule(
        expression,
        () => {
          tick();
        },
        { name: `${name}#${Math.random().toString(36).slice(2, 8)}`, logger },
      );
      return {
        stop: () => {
          void task.destroy();
        },
      };
    },
  };
}
