// Incus server settings: the factory config (contract C), pixels' `[incus]` TOML section mapped onto it, and the
// PEM files read into connection options.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { HostGuardMode } from '../../core/backend';
import { ValidationError } from '../../core/errors';
import type { RestClientOptions } from './rest-client';

export interface IncusServerConfig {
  serverId: string;
  /** Default /var/lib/incus/unix.socket when url is absent. */
  socketPath?: string;
  /** https://host:8443 */
  url?: string;
  /** PEM file paths (pixels [incus] client_cert/client_key). */
  clientCert?: string;
  clientKey?: string;
  /** PEM file path of the pinned server certificate. */
  serverCert?: string;
  /** Default 'default'. */
  project?: string;
  /** NIC network for new sandboxes (default: the default profile's). */
  network?: string;
  storagePool?: string;
  /** The host-side egress layer (an Incus network ACL); default off. */
  hostGuard?: HostGuardMode;
}

/** pixels' `[incus]` section as it appears in config.toml. */
export interface PixelsIncusSection {
  socket?: string;
  remote?: string;
  client_cert?: string;
  client_key?: string;
  server_cert?: string;
  project?: string;
}

function str(section: Record<string, unknown>, key: string): string | undefined {
  const v = section[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string')
    throw new ValidationError(`[incus] ${key} must be a string.`, [{ field: key, message: 'not a string' }]);
  return v;
}

/** `remote` is a URL or a host[:port]; HTTPS on 8443 is Incus' default. */
export function remoteUrl(remote: string): string {
  if (/^https:\/\//i.test(remote)) return remote.replace(/\/+$/, '');
  if (/^[a-z]+:\/\//i.test(remote))
    throw new ValidationError(`[incus] remote must be an https:// URL or a host name, not ${remote}.`);
  return `https://${/:\d+$/.test(remote) && !remote.includes(']') ? remote : `${remote}:8443`}`;
}

/** Maps a parsed `[incus]` table onto the factory config. */
export function incusConfigFromPixels(
  section: Record<string, unknown>,
  serverId = 'incus',
): IncusServerConfig {
  const s: PixelsIncusSection = {
    socket: str(section, 'socket'),
    remote: str(section, 'remote'),
    client_cert: str(section, 'client_cert'),
    client_key: str(section, 'client_key'),
    server_cert: str(section, 'server_cert'),
    project: str(section, 'project'),
  };
  return {
    serverId,
    socketPath: s.remote ? undefined : s.socket,
    url: s.remote ? remoteUrl(s.remote) : undefined,
    clientCert: s.client_cert ? expandHome(s.client_cert) : undefined,
    clientKey: s.client_key ? expandHome(s.client_key) : undefined,
    serverCert: s.server_cert ? expandHome(s.server_cert) : undefined,
    project: s.project,
  };
}

export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(expandHome(path), 'utf8');
  } catch (err) {
    throw new ValidationError(
      `Cannot read the Incus ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? err}.`,
      [{ field: what, message: 'unreadable' }],
    );
  }
}

/** Reads the PEM files the config points at. */
export function connectionOptions(config: IncusServerConfig): RestClientOptions {
  if (!config.url) return { socketPath: config.socketPath, project: config.project };
  return {
    url: config.url,
    clientCert: config.clientCert ? readPem(config.clientCert, 'client certificate') : undefined,
    clientKey: config.clientKey ? readPem(config.clientKey, 'client key') : undefined,
    serverCert: config.serverCert ? readPem(config.serverCert, 'server certificate') : undefined,
    project: config.project,
  };
}
