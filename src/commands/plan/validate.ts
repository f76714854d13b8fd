import { Args } from '@oclif/core';
import { loadPlan } from '../../core/plan/plan.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../../cli/base-command.js';

export default class PlanValidate extends TykdrCommand<typeof PlanValidate> {
  static override summary = 'Check a restore plan file: schema, unknown components, cycles, duplicate ids, missing verifications.';
  static override description = `Exits 0 when the plan is valid; otherwise prints the first problem with its file, path and line, and exits 2.

${EXIT_CODES_HELP}`;

  static override examples = ['<%= config.bin %> plan validate ./my-plan.yaml'];

  static override args = { file: Args.string({ description: 'Plan file (or built-in plan name).', required: true }) };

  async run(): Promise<unknown> {
    const plan = await loadPlan(this.args.file);
    this.log(`${plan.file}: valid plan "${plan.name}", ${plan.steps.length} step(s): ${plan.ordered.map((s) => s.id).join(' -> ')}`);
    return { valid: true, file: plan.file, name: plan.name, order: plan.ordered.map((s) => s.id) };
  }
}
