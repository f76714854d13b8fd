import { z } from 'zod';
import { isPublicKeyText, isWeakPublicKeyText } from '../signing/keys.js';
import { duration } from './common.js';

/** Config for signed manifests and reports, and for how long restore and drill evidence is kept. */

export const signingSchema = z
  .strictObject({
    keyFile: z
      .string()
      .optional()
      .describe('Ed25519 private key (PEM) of this backup or drill host: manifests and reports are signed with it. Create it with `tykdr key generate --signing`.'),
    verifyKeys: z
      .array(
        z
          .string()
          .refine(isPublicKeyText, {
            message: 'expected an Ed25519 public key as printed by `tykdr key generate --signing`: tykdr-ed25519:<44 base64 characters>',
          })
          .refine((k) => !isWeakPublicKeyText(k), { message: 'a small-order Ed25519 point: signatures anyone can forge verify with it' }),
      )
      .default([])
      .describe('Public keys (tykdr-ed25519:...) whose signatures are trusted. When set, restore, drill and verify refuse a manifest no listed key signed.'),
  })
  .prefault({});

export const evidenceSchema = z
  .strictObject({
    keepWithin: duration
      .default('400d')
      .describe('prune never deletes restore and drill reports (and their signatures) younger than this, whatever happens to their snapshots.'),
  })
  .prefault({});
