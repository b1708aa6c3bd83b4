// Add Server's first contact with a NAS, in the order that keeps the API key safe: the certificate (a bare TLS
// handshake), then the API endpoint (a WebSocket and one unauthenticated call), and only then the key. A refused
// key is told apart from a key of another user by asking the server who owns it.
import {
  fetchServerCertificate,
  sameFingerprint,
  formatFingerprint,
  type CertificateDescription,
} from '../../core/certificate';
import { UnsupportedError } from '../../core/errors';
import type { Logger } from '../../core/log';
import { silentLogger } from '../../core/log';
import { defaultPort } from '../../core/server-address';
import { LoginRefusedError } from './auth';
import { RpcConnection } from './connection';
import { assertTransportAllowed } from './tls';

export interface EndpointTarget {
  host: string;
  port?: number;
  secure: boolean;
  tlsFingerprint?: string;
}

export type EndpointCheck =
  | { trusted: true; how: 'ca' | 'pin' | 'plain'; certificate?: CertificateDescription }
  | { trusted: false; certificate: CertificateDescription; caProblem: string; pinned?: string };

function urlOf(t: EndpointTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.secure ? 'wss' : 'ws'}://${host}:${t.port ?? defaultPort(t.secure)}/api/current`;
}

function open(t: EndpointTarget, log: Logger, timeoutMs: number): Promise<RpcConnection> {
  return RpcConnection.open({
    url: urlOf(t),
    host: t.host,
    tlsFingerprint: t.tlsFingerprint,
    connectTimeoutMs: timeoutMs,
    pingIntervalMs: 60_000,
    log,
  });
}

/**
 * Reachability and trust without a key: the certificate is fetched and judged (CA or pin); an untrusted one is
 * returned for the person to decide. A trusted endpoint must then answer `auth.mechanism_choices` (public on
 * 25.04+) with API_KEY_PLAIN, which proves it is a TrueNAS API we can log in to.
 */
export async function checkTrueNASEndpoint(
  target: EndpointTarget,
  log: Logger = silentLogger,
  timeoutMs = 10_000,
): Promise<EndpointCheck> {
  assertTransportAllowed(target.host, target.secure);
  let how: 'ca' | 'pin' | 'plain' = 'plain';
  let certificate: CertificateDescription | undefined;
  if (target.secure) {
    const fetched = await fetchServerCertificate(target.host, target.port ?? 443, timeoutMs);
    certificate = fetched.certificate;
    if (target.tlsFingerprint && sameFingerprint(target.tlsFingerprint, certificate.fingerprint)) how = 'pin';
    else if (fetched.caTrusted && !target.tlsFingerprint) how = 'ca';
    else
      return {
        trusted: false,
        certificate,
        caProblem: fetched.caProblem ?? 'a different certificate is pinned',
        pinned: target.tlsFingerprint ? formatFingerprint(target.tlsFingerprint) : undefined,
      };
  }
  const conn = await open(target, log, timeoutMs);
  try {
    const mechanisms = await conn.call('auth.mechanism_choices', [], timeoutMs);
    if (!Array.isArray(mechanisms) || !mechanisms.includes('API_KEY_PLAIN'))
      throw new UnsupportedError(
        `${target.host} does not offer API key logins (it offers ${JSON.stringify(mechanisms)}); Pixels needs TrueNAS SCALE 25.04 or newer.`,
      );
  } finally {
    conn.close();
  }
  return { trusted: true, how, certificate };
}

/**
 * After login_ex said AUTH_ERR: the legacy `auth.login_with_api_key` looks up the key's owner itself, so if it
 * succeeds the key is good and the user name was wrong (auth.me names the owner). Same pinned transport as the
 * login, so the key goes nowhere it had not already gone.
 */
export async function explainRefusedKey(
  target: EndpointTarget,
  username: string,
  apiKey: string,
  refused: LoginRefusedError,
  log: Logger = silentLogger,
  timeoutMs = 10_000,
): Promise<LoginRefusedError> {
  if (refused.response !== 'AUTH_ERR') return refused;
  let conn: RpcConnection;
  try {
    conn = await open(target, log, timeoutMs);
  } catch {
    return refused;
  }
  try {
    const ok = await conn.call('auth.login_with_api_key', [apiKey], timeoutMs);
    if (ok === true) {
      const me = (await conn.call('auth.me', [], timeoutMs)) as { pw_name?: unknown } | null;
      const owner = typeof me?.pw_name === 'string' ? me.pw_name : undefined;
      if (owner && owner !== username)
        return new LoginRefusedError(
          `The API key is valid but belongs to user "${owner}", not "${username}": use "${owner}" as the user.`,
          'AUTH_ERR',
          owner,
        );
      return refused;
    }
    return new LoginRefusedError(
      `${target.host} does not accept this API key for any user: it is mistyped, or it was deleted or revoked ` +
        '(TrueNAS does not say which). A revoked key is marked "Revoked" in the TrueNAS UI under Credentials → ' +
        'Users → API Keys; create a new one there.',
      'AUTH_ERR',
    );
  } catch {
    return refused; // the explanation is a bonus; the server's own refusal still stands
  } finally {
    conn.close();
  }
}
