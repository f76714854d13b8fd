/** age v1 file encryption on node:crypto: X25519 recipients or a passphrase, streaming, bounded memory. */
export { createEncryptStream, type EncryptOptions } from './encrypt.js';
export { createDecryptStream, type DecryptOptions } from './decrypt.js';
export {
  formatIdentityFile,
  generateIdentity,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  recipientFingerprint,
  recipientFromIdentity,
  type AgeIdentity,
  type AgeRecipient,
} from './keys.js';
