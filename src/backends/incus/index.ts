// Contract C: the Incus backend factory.
import type { Backend } from '../../core/backend';
import type { Logger } from '../../core/log';
import { IncusBackend } from './backend';
import { connectionOptions } from './config';
import type { IncusServerConfig } from './config';

export type { IncusServerConfig, PixelsIncusSection } from './config';
export { incusConfigFromPixels, remoteUrl } from './config';
export { IncusBackend } from './backend';
export { DEFAULT_SOCKET, certFingerprint } from './rest-client';

/** A backend for one Incus server; it connects lazily on the first call. */
export function createIncusBackend(config: IncusServerConfig, log?: Logger): IncusBackend & Backend {
  return new IncusBackend(
    {
      serverId: config.serverId,
      connection: connectionOptions(config),
      network: config.network,
      storagePool: config.storagePool,
    },
    log,
  );
}
