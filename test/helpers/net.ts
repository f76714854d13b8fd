// Tests use the same free-port finder as tykdr's own scratch servers.
export { freePort } from '../../src/core/net.js';
