#!/usr/bin/env node
// tykdr supports Node 20; the AWS SDK warns about its own future Node policy on every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { execute } = await import('@oclif/core');

await execute({ dir: import.meta.url });
