// Puts SSH access into a sandbox before it first boots (or right after a clone): our generated host key and
// the user's public key, written with the backend's file API (TrueNAS file_receive, Incus file push) so no
// SSH is needed yet. The user key is APPENDED (pixels overwrites: the last machine wins) and the host key is
// recorded in our known_hosts, so the first connection is already verified strictly.
import type { Backend } from '../core/backend';
import { ValidationError } from '../core/errors';
import { instanceName } from '../core/sandbox';
import { parsePublicKey, type KeyPair } from './keys';
import type { KnownHosts } from './known-hosts';

export const HOST_KEY_PATH = '/etc/ssh/ssh_host_ed25519_key';
export const ROOT_AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';
export const PIXEL_AUTHORIZED_KEYS = '/home/pixel/.ssh/authorized_keys';
/** The `pixel` user created by provisioning. */
export const PIXEL_UID = 1000;

export interface SandboxAccessOptions {
  /** The user's public key line (`ssh-ed25519 AAAA… comment`). */
  userPublicKey: string;
  /** The sandbox's host key pair (generateHostKey(); a clone gets a new one). */
  hostKey: KeyPair;
  /** Also authorise the key for `pixel` (when the image already has that user). Default true. */
  pixelUser?: boolean;
  /** Where to record the host key, with the names ssh will use (alias first, then addresses). */
  knownHosts?: { file: KnownHosts; names: string[]; port?: number };
}

export async function prepareSandboxAccess(
  backend: Backend,
  name: string,
  options: SandboxAccessOptions,
): Promise<void> {
  // Validate before touching the sandbox; a key with a line break could smuggle in a second, foreign key.
  const user = parsePublicKey(options.userPublicKey);
  const host = parsePublicKey(options.hostKey.publicOpenSsh);
  if (host.type !== 'ssh-ed25519')
    throw new ValidationError(`The sandbox host key must be ed25519, not ${host.type}.`);
  if (!options.hostKey.privateOpenSsh.includes('-----BEGIN OPENSSH PRIVATE KEY-----')) {
    throw new ValidationError('The sandbox host key must be an OpenSSH private key.');
  }
  const userLine = `${user.type} ${user.blob.toString('base64')}${user.comment ? ` ${user.comment}` : ''}`;
  // A leading newline keeps the key on its own line even if the existing file lacks a final one.
  const appended = Buffer.from(`\n${userLine}\n`);

  await backend.writeFile(name, HOST_KEY_PATH, Buffer.from(options.hostKey.privateOpenSsh), {
    mode: 0o600,
    uid: 0,
    gid: 0,
  });
  await backend.writeFile(
    name,
    `${HOST_KEY_PATH}.pub`,
    Buffer.from(options.hostKey.publicOpenSsh.trim() + '\n'),
    {
      mode: 0o644,
      uid: 0,
      gid: 0,
    },
  );
  await backend.writeFile(name, ROOT_AUTHORIZED_KEYS, appended, {
    append: true,
    mode: 0o600,
    uid: 0,
    gid: 0,
  });
  if (options.pixelUser ?? true) {
    await backend.writeFile(name, PIXEL_AUTHORIZED_KEYS, appended, {
      append: true,
      mode: 0o600,
      uid: PIXEL_UID,
      gid: PIXEL_UID,
    });
  }
  if (options.knownHosts) {
    const names = options.knownHosts.names.length ? options.knownHosts.names : [instanceName(name)];
    await options.knownHosts.file.set(names, options.hostKey.publicOpenSsh, options.knownHosts.port);
  }
}
