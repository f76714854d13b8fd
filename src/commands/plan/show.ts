import { Args } from '@oclif/core';
import { loadPlan } from '../../core/plan/plan.js';
import { describeAction } from '../../core/plan/describe.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../../cli/base-command.js';

export default class PlanShow extends TykdrCommand<typeof PlanShow> {
  static override summary = 'Show a restore plan: the resolved order and what each step will do.';
  static override description = `NAME is a built-in plan (full, redis, database, dashboard, gateway) or the path of a plan file.

${EXIT_CODES_HELP}`;

  static override examples = ['<%= config.bin %> plan show full', '<%= config.bin %> plan show ./plans/my-plan.yaml --json'];

  static override args = { name: Args.string({ description: 'Plan name or file.', required: true }) };

  async run(): Promise<unknown> {
    const plan = await loadPlan(this.args.name);
    this.log(`Plan ${plan.name} (${plan.file})`);
    if (plan.description) this.log(`  ${plan.description}`);
    plan.ordered.forEach((s, i) => {
      const deps = s.depends_on.length ? ` after ${s.depends_on.join(', ')}` : '';
      this.log(`  ${i + 1}. ${s.id}: ${s.action} ${s.component}${deps} (timeout ${s.timeout}, on error ${s.on_error})`);
      this.log(`     ${describeAction(s.component, s.action)}`);
      this.log(`     verify: ${s.verify.join(', ')}`);
    });
    return { name: plan.name, file: plan.file, steps: plan.ordered.map(({ timeoutMs: _t, ...s }) => s) };
  }
}
