// ed25519 key pairs in OpenSSH format, made on the client so a sandbox's host key is known before the first
// connection. The one implementation for the SSH layer (host keys, the dedicated user key) and the backends
// (Incus reseals clones with it). It imports ssh2, so only modules that already need ssh2 import this file;
// the rest of src/core stays free of it.
import { utils } from 'ssh2';

export interface KeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text. */
  privateOpenSsh: string;
  /** One line: `ssh-ed25519 AAAA… comment`. */
  publicOpenSsh: string;
}

/** Wire size of an ed25519 public key blob: string "ssh-ed25519" + string of 32 key bytes. */
const ED25519_BLOB_LENGTH = 4 + 'ssh-ed25519'.length + 4 + 32;

/** A fresh ed25519 key pair. */
export function generateKeyPair(comment = ''): KeyPair {
  // ssh2's generator drops a leading zero byte of the key (1 key in 256): the result is malformed (ssh2
  // itself cannot load it, sshd rejects it). Such a draw is thrown away.
  for (let attempt = 0; attempt < 32; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    const publicOpenSsh = pair.public.trim();
    const blob = Buffer.from(publicOpenSsh.split(' ')[1] ?? '', 'base64');
    if (blob.length === ED25519_BLOB_LENGTH && !(utils.parseKey(pair.private) instanceof Error))
      return { privateOpenSsh: pair.private, publicOpenSsh };
  }
  throw new Error('Could not generate a well-formed ed25519 key.');
}

/** A fresh ed25519 host key for a sandbox (a clone gets a new one too). */
export function generateHostKey(comment = 'pixels-sandbox'): KeyPair {
  return generateKeyPair(comment);
}
