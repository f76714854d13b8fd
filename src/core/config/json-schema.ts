import { z } from 'zod';
import { configSchema } from './schema.js';

/** The JSON Schema for editors, generated from the zod schema (input side: defaults are optional). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://tykdr.dev/schema/tykdr.schema.json',
    title: 'tykdr.yaml',
    description: 'Configuration of tykdr, disaster recovery for Tyk API Gateway deployments.',
  };
}

export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
