// Regenerates schema/tykdr.schema.json (npm run schema). A test fails when the file is stale.
import { writeFileSync } from 'node:fs';
import { configJsonSchemaText } from './json-schema.js';

const target = new URL('../../../schema/tykdr.schema.json', import.meta.url);
writeFileSync(target, configJsonSchemaText());
process.stdout.write(`wrote ${target.pathname}\n`);
