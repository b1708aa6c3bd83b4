// ed25519 key pairs in OpenSSH format: sandbox host keys (generated on the client so they are known before the
// first connection) and the user's identity (an existing key file, or a dedicated one generated on request).
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { utils } from 'ssh2';
import { NotFoundError, ValidationError } from '../core/errors';
import { generateKeyPair } from '../core/keys';

// Generation lives in src/core/keys.ts (one implementation, shared with the backends).
export { generateHostKey, generateKeyPair, type KeyPair } from '../core/keys';

export interface PublicKey {
  /** Key type, e.g. `ssh-ed25519`. */
  type: string;
  /** The SSH wire-format key blob (what a server presents). */
  blob: Buffer;
  comment: string;
}

/** Parses one `type base64 [comment]` line; rejects anything else (including embedded newlines). */
export function parsePublicKey(line: string): PublicKey {
  const text = line.trim();
  if (/[\r\n]/.test(text)) throw new ValidationError('An SSH public key must be a single line.');
  const match = /^(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/.exec(text);
  if (!match) throw new ValidationError('Not an SSH public key (expected "<type> <base64> [comment]").');
  const [, type, b64, comment = ''] = match;
  const blob = Buffer.from(b64!, 'base64');
  // The blob starts with its own type name; a mismatch means a damaged or forged line.
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (
    nameLength < 0 ||
    4 + nameLength > blob.length ||
    blob.subarray(4, 4 + nameLength).toString() !== type
  ) {
    throw new ValidationError(`Not a valid ${type} SSH public key.`);
  }
  return { type: type!, blob, comment };
}

/** OpenSSH-style fingerprint of a key blob or public key line: `SHA256:<base64 without padding>`. */
export function fingerprint(key: Buffer | string): string {
  const blob = typeof key === 'string' ? parsePublicKey(key).blob : key;
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The user's SSH identity: the private key to authenticate with and the public line to install in sandboxes. */
export interface UserIdentity {
  privateKeyPath: string;
  privateKey: Buffer;
  publicOpenSsh: string;
}

export function defaultIdentityPath(): string {
  return join(homedir(), '.ssh', 'id_ed25519');
}

/** Reads an existing private key; the public line comes from `<path>.pub`, or is derived from the private key. */
export async function loadUserIdentity(privateKeyPath = defaultIdentityPath()): Promise<UserIdentity> {
  let privateKey: Buffer;
  try {
    privateKey = await fs.readFile(privateKeyPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(
        `SSH key ${privateKeyPath} does not exist. Choose another key or generate a dedicated one.`,
      );
    }
    throw err;
  }
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    throw new ValidationError(
      encrypted
        ? `SSH key ${privateKeyPath} is protected by a passphrase; use a key without one (e.g. a dedicated Pixels key).`
        : `SSH key ${privateKeyPath} could not be read: ${parsed.message}`,
    );
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) throw new ValidationError(`${privateKeyPath} is not a private SSH key.`);
  let publicOpenSsh: string;
  try {
    publicOpenSsh = (await fs.readFile(`${privateKeyPath}.pub`, 'utf8')).trim();
    parsePublicKey(publicOpenSsh);
  } catch {
    publicOpenSsh = `${key.type} ${key.getPublicSSH().toString('base64')}${key.comment ? ` ${key.comment}` : ''}`;
  }
  return { privateKeyPath, privateKey, publicOpenSsh };
}

/** The dedicated Pixels key: loads it when present, else creates it (key 0600, folder 0700) without overwriting. */
export async function ensureDedicatedIdentity(
  privateKeyPath: string,
  comment = 'pixels-vscode',
): Promise<UserIdentity> {
  try {
    return await loadUserIdentity(privateKeyPath);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  await fs.mkdir(dirname(privateKeyPath), { recursive: true, mode: 0o700 });
  const pair = generateKeyPair(comment);
  // Written to a temp file, then hard-linked into place: link() never clobbers (another window may have made
  // the key a moment ago) and nobody can read a half-written key.
  const temp = `${privateKeyPath}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.writeFile(temp, pair.privateOpenSsh, { mode: 0o600, flag: 'wx' });
  try {
    await fs.link(temp, privateKeyPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadUserIdentity(privateKeyPath);
    throw err;
  } finally {
    await fs.rm(temp, { force: true });
  }
  await fs.writeFile(`${privateKeyPath}.pub`, pair.publicOpenSsh + '\n', { mode: 0o644 });
  return { privateKeyPath, privateKey: Buffer.from(pair.privateOpenSsh), publicOpenSsh: pair.publicOpenSsh };
}
