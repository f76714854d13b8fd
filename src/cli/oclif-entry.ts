// The oclif functions bin/run.js calls, as one module that bin/bundle.js bundles with the commands, so the
// bundled commands and bin/run.js share one copy of oclif.
export { Config, run, flush, handle } from '@oclif/core';
