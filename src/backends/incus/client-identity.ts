// The client certificate Pixels made for one Incus server, kept as files in the extension's private storage:
// <root>/<server id>/{client.crt, client.key, server.crt}, the folder 0700 and every file 0600. Files, not
// SecretStorage, because an Incus server entry names PEM files (as pixels' `[incus]` and the incus CLI's
// ~/.config/incus/client.key do) and the backend reads them on each connection; the key is like an SSH private
// key (the server holds only the certificate), and this works where no OS keyring is unlocked. Settings hold the
// paths only; the key never leaves this folder.
import { promises as fs } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import type { ClientCertificate } from '../../core/client-certificate';

export interface StoredIdentity {
  dir: string;
  clientCert: string;
  clientKey: string;
  serverCert: string;
}

export function identityDir(root: string, serverId: string): string {
  return join(root, serverId.replace(/[^A-Za-z0-9._-]/g, '_'));
}

/** Writes the three files (a new folder; an existing one for this id is replaced). Nothing is left on failure. */
export async function saveClientIdentity(
  root: string,
  serverId: string,
  client: ClientCertificate,
  serverCert: string,
): Promise<StoredIdentity> {
  const dir = identityDir(root, serverId);
  const stored = {
    dir,
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    serverCert: join(dir, 'server.crt'),
  };
  try {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.chmod(dir, 0o700);
    for (const [path, data] of [
      [stored.clientKey, client.key],
      [stored.clientCert, client.cert],
      [stored.serverCert, serverCert],
    ] as const) {
      // O_EXCL with mode 0600: the key is never readable by others, not even between create and chmod.
      await fs.writeFile(path, data, { mode: 0o600, flag: 'wx' });
    }
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return stored;
}

/** True when `path` lies inside `root` (a file this extension made, which it may delete). */
export function isInside(root: string, path: string | undefined): boolean {
  if (!path) return false;
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

export async function removeClientIdentity(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}
