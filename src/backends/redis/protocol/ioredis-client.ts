// ioredis's client class, for modules that load it on first use: `await import('./ioredis-client.js')`.
// A dynamic import('ioredis') itself would break in the bundle (bin/bundle.js): esbuild gives a CommonJS
// package loaded that way only a default export, while node's own loader also gives its named exports.
export { Redis } from 'ioredis';
