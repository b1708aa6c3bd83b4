// Puts SSH access into a sandbox before it first boots (or right after a clone): our generated host key and
// the user's public key, written with the backend's file API (TrueNAS file_receive, Incus file push) so no
// SSH is needed yet. The user key is APPENDED (pixels overwrites: the last machine wins) and the host key is
// recorded in our known_hosts, so the first connection is already verified strictly.
import { randomBytes } from 'node:crypto';
import type { Backend } from '../core/backend';
import { ServerError, ValidationError } from '../core/errors';
import { instanceName } from '../core/sandbox';
import { shq, writeFileScript } from '../guest/shell';
import type { SshTarget } from './connect';
import { parsePublicKey, type KeyPair } from './keys';
import type { KnownHosts } from './known-hosts';
import type { SshPool } from './pool';

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

/** The checked `type base64 comment` line of the user's key (a key with a line break could smuggle in another). */
function checkedKeys(options: SandboxAccessOptions): string {
  const user = parsePublicKey(options.userPublicKey);
  const host = parsePublicKey(options.hostKey.publicOpenSsh);
  if (host.type !== 'ssh-ed25519')
    throw new ValidationError(`The sandbox host key must be ed25519, not ${host.type}.`);
  if (!options.hostKey.privateOpenSsh.includes('-----BEGIN OPENSSH PRIVATE KEY-----')) {
    throw new ValidationError('The sandbox host key must be an OpenSSH private key.');
  }
  return `${user.type} ${user.blob.toString('base64')}${user.comment ? ` ${user.comment}` : ''}`;
}

/**
 * The same access written by root inside the running sandbox over SSH (`target`: root, the host key it serves
 * now). Paths resolve in the sandbox's own filesystem, so a symbolic link planted there cannot lead the write to
 * the server's files, as it could through the TrueNAS file API. With `newIdentity` (a clone, which boots with
 * its source's files) it also gets its own hostname, machine-id and no inherited host keys. sshd serves the
 * new host key after the next restart, which is the caller's.
 */
export async function prepareSandboxAccessOverSsh(
  pool: SshPool,
  target: SshTarget,
  name: string,
  options: SandboxAccessOptions & { newIdentity?: boolean },
): Promise<void> {
  const userLine = checkedKeys(options);
  const authorize = (home: string, owner: string) =>
    [
      `install -d -m 0700 -o ${owner} -g ${owner} ${home}/.ssh`,
      `grep -qxF -- ${shq(userLine)} ${home}/.ssh/authorized_keys 2>/dev/null || printf '%s\\n' ${shq(userLine)} >> ${home}/.ssh/authorized_keys`,
      `chown ${owner}:${owner} ${home}/.ssh/authorized_keys && chmod 0600 ${home}/.ssh/authorized_keys`,
    ].join('\n');
  const identity = options.newIdentity
    ? [
        writeFileScript({ path: '/etc/hostname', content: `${instanceName(name)}\n`, mode: 0o644 }),
        // A fresh one, not an empty one: systemd would run its first-boot presets again on an empty one.
        writeFileScript({
          path: '/etc/machine-id',
          content: `${randomBytes(16).toString('hex')}\n`,
          mode: 0o444,
        }),
        'rm -f /var/lib/dbus/machine-id',
        'rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub',
      ].join('\n')
    : '';
  const script = [
    'set -eu',
    identity,
    writeFileScript({ path: HOST_KEY_PATH, content: options.hostKey.privateOpenSsh, mode: 0o600 }),
    writeFileScript({
      path: `${HOST_KEY_PATH}.pub`,
      content: options.hostKey.publicOpenSsh.trim(),
      mode: 0o644,
    }),
    authorize('/root', '0'),
    (options.pixelUser ?? true)
      ? `if home=$(getent passwd pixel | cut -d: -f6) && [ -n "$home" ]; then\n${authorize('"$home"', 'pixel')}\nfi`
      : '',
  ]
    .filter(Boolean)
    .join('\n');
  const result = await pool.exec(target, ['bash', '-c', script], { timeoutMs: 60_000 });
  if (result.exitCode !== 0) {
    const why = result.stderr.toString('utf8').trim().split('\n').pop() ?? '';
    throw new ServerError(
      `Could not put SSH access into "${name}" over SSH (exit ${result.exitCode ?? result.signal}): ${why || 'no message'}.`,
    );
  }
  if (options.knownHosts) {
    const names = options.knownHosts.names.length ? options.knownHosts.names : [instanceName(name)];
    await options.knownHosts.file.set(names, options.hostKey.publicOpenSsh, options.knownHosts.port);
  }
}

export async function prepareSandboxAccess(
  backend: Backend,
  name: string,
  options: SandboxAccessOptions,
): Promise<void> {
  // Validate before touching the sandbox; a key with a line break could smuggle in a second, foreign key.
  const userLine = checkedKeys(options);
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
