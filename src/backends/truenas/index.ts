// Contract B: the TrueNAS backend factory and the "Add Server…" probe.
import type { Backend, ServerInfo } from '../../core/backend';
import type { Logger } from '../../core/log';
import type { NicSetting } from '../../core/network-plan';
import { silentLogger } from '../../core/log';
import { LoginRefusedError } from './auth';
import { TrueNASClient } from './client';
import { explainRefusedKey } from './first-contact';
import { apiFamily } from './version';
import { TrueNASBackendByVersion } from './by-version';
import { TrueNASContainerBackend } from './container-backend';
import { TrueNASVirtBackend } from './virt-backend';

export interface TrueNASServerConfig {
  serverId: string;
  /** hostname or IP */
  host: string;
  /** default 443 (wss) / 80 (ws) */
  port?: number;
  /** API keys belong to a user (25.04+) */
  username: string;
  /** default true (wss://). false is allowed only for loopback hosts */
  secure?: boolean;
  /** SHA-256 of the server cert (hex, with or without colons): accepts a self-signed cert */
  tlsFingerprint?: string;
  /** default 30000 */
  callTimeoutMs?: number;
  /** The NIC for new sandboxes; absent: chosen from the NAS's network (see nic-choice.ts). */
  nic?: NicSetting;
  /**
   * TrueNAS 26 RC.1 and later refuse snapshots of container datasets: take checkpoints with one-off root cron
   * jobs on the NAS instead (off unless the user turns it on).
   */
  hostJobCheckpoints?: boolean;
}

export function createClient(
  config: TrueNASServerConfig,
  apiKey: string,
  log: Logger = silentLogger,
): TrueNASClient {
  return new TrueNASClient(
    {
      host: config.host,
      port: config.port,
      secure: config.secure ?? true,
      tlsFingerprint: config.tlsFingerprint,
      username: config.username,
      callTimeoutMs: config.callTimeoutMs,
    },
    apiKey,
    log,
  );
}

/**
 * Lazy: connects on the first call. A key over ws:// to a non-loopback host fails every call with a SecurityError,
 * before any socket is opened.
 */
export function createTrueNASBackend(
  config: TrueNASServerConfig,
  apiKey: string,
  log: Logger = silentLogger,
): Backend {
  const client = createClient(config, apiKey, log);
  return new TrueNASBackendByVersion(
    config.serverId,
    client,
    (family) =>
      family === 'container-26'
        ? new TrueNASContainerBackend(
            config.serverId,
            client,
            { nic: config.nic, hostJobCheckpoints: config.hostJobCheckpoints },
            log,
          )
        : new TrueNASVirtBackend(config.serverId, client, config.nic, log),
    log,
  );
}

/**
 * For "Add Server…": connect, log in, read the version; a server we cannot drive is refused clearly, and a refused
 * key says whether the key or the user name is wrong.
 */
export async function probeTrueNAS(
  config: TrueNASServerConfig,
  apiKey: string,
  log: Logger = silentLogger,
): Promise<ServerInfo> {
  const client = createClient(config, apiKey, log);
  try {
    const version = await client.version();
    apiFamily(version);
    return { version: `TrueNAS ${version.display}` };
  } catch (err) {
    if (!(err instanceof LoginRefusedError)) throw err;
    throw await explainRefusedKey(
      {
        host: config.host,
        port: config.port,
        secure: config.secure ?? true,
        tlsFingerprint: config.tlsFingerprint,
      },
      config.username,
      apiKey,
      err,
      log,
    );
  } finally {
    client.dispose();
  }
}

export { TrueNASClient } from './client';
export { LoginRefusedError } from './auth';
export { checkTrueNASEndpoint, type EndpointCheck, type EndpointTarget } from './first-contact';
export type { ApiFamily, TrueNASVersion } from './version';
