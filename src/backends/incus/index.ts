// Contract C: the Incus backend factory.
import type { Backend, ServerInfo } from '../../core/backend';
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
      hostGuard: config.hostGuard,
    },
    log,
  );
}

/** For "Add Server…": connects once, says what the server is (members too, on a cluster), and disconnects. */
export async function probeIncus(config: IncusServerConfig, log?: Logger): Promise<ServerInfo> {
  const backend = createIncusBackend(config, log);
  try {
    return await backend.info();
  } finally {
    backend.dispose();
  }
}
export {
  forgetTrust,
  forgetTrustWith,
  redeemTrustToken,
  TrustTokenRefusedError,
  TrustTokenUnreachableError,
} from './trust-token';
export type { RedeemedTrust } from './trust-token';
export { identityDir, isInside, removeClientIdentity, saveClientIdentity } from './client-identity';
