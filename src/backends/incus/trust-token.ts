// Joining an Incus server with a trust token (`incus config trust add <name>` on the host prints one), as
// `incus remote add <name> <token>` does: the token is base64 JSON {client_name, fingerprint, addresses, secret,
// expires_at} (lxc/incus shared/api/certificate.go, CertificateAddToken). The server's certificate is checked
// against the token's fingerprint with a bare TLS handshake before anything is sent; then the whole token goes in
// POST /1.0/certificates {trust_token} over a connection that presents our client certificate, which the server
// adds to its trust store (cmd/incusd/certificates.go: the token's own name/type/projects apply, the certificate
// is the connection's). Tokens are single use and live in the daemon's memory until redeemed or expired.
import type { ClientCertificate } from '../../core/client-certificate';
import {
  describeSocketError,
  fetchServerCertificate,
  formatFingerprint,
  type FetchedCertificate,
} from '../../core/certificate';
import {
  ConnectionError,
  NotAuthorizedError,
  PixelsError,
  SecurityError,
  TimeoutError,
} from '../../core/errors';
import type { IncusTrustToken } from '../../core/incus-trust-token';
import { silentLogger, type Logger } from '../../core/log';
import { connectionOptions, remoteUrl } from './config';
import { IncusRestClient } from './rest-client';
import type { IncusServer } from './types';

/** None of the addresses tried answered (the person may know another one). */
export class TrustTokenUnreachableError extends ConnectionError {}

/** The server refused the token: it was used already, revoked, expired, or the daemon restarted since. */
export class TrustTokenRefusedError extends NotAuthorizedError {}

export interface RedeemOptions {
  token: IncusTrustToken;
  /** A host[:port] or https:// URL to use instead of the token's addresses (when they are not reachable from here). */
  address?: string;
  client: ClientCertificate;
  timeoutMs?: number;
  log?: Logger;
}

export interface RedeemedTrust {
  /** https://host:port that answered with the token's certificate. */
  url: string;
  /** The server's certificate (PEM), whose SHA-256 is the token's fingerprint: the pin from now on. */
  serverCert: string;
  /** "Incus 6.0.4" */
  version: string;
}

function hostOfUrl(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 8443) };
}

function why(err: unknown): string {
  if (err instanceof TimeoutError) return 'timed out';
  const cause = err instanceof PixelsError ? err.cause : err;
  return cause instanceof Error ? describeSocketError(cause) : String(err);
}

/**
 * The first of the candidate addresses whose TLS handshake completes. A certificate other than the token's is
 * refused at once (nothing is sent to that server); unreachable addresses are listed with their reason.
 */
async function reachTokenServer(
  urls: string[],
  fingerprint: string,
  timeoutMs: number,
  log: Logger,
): Promise<{ url: string; fetched: FetchedCertificate }> {
  const failures: string[] = [];
  for (const url of urls) {
    const { host, port } = hostOfUrl(url);
    let fetched: FetchedCertificate;
    try {
      fetched = await fetchServerCertificate(host, port, timeoutMs);
    } catch (err) {
      failures.push(`${url} (${why(err)})`);
      log.info(`incus trust token: ${url} did not answer: ${why(err)}`);
      continue;
    }
    const got = fetched.certificate.fingerprint.replace(/:/g, '').toLowerCase();
    if (got !== fingerprint)
      throw new SecurityError(
        `The server at ${url} presented certificate SHA-256 ${fetched.certificate.fingerprint}, but the trust ` +
          `token was made by a server with ${formatFingerprint(fingerprint)}. Nothing was sent to it. Check the ` +
          'address (another server, or something in between?), or make the token on the server you mean.',
      );
    return { url, fetched };
  }
  throw new TrustTokenUnreachableError(
    `No address of the Incus server answered: ${failures.join('; ')}. Is incusd listening there ` +
      '(`incus config get core.https_address` on the host)? If the host has another address from here, give it ' +
      'with the token.',
  );
}

/**
 * Redeems a trust token with `client` and connects with it once. On failure the server holds no trust entry for
 * `client` (one made before a later step failed is deleted again, as a client may delete its own).
 */
export async function redeemTrustToken(options: RedeemOptions): Promise<RedeemedTrust> {
  const { token, client } = options;
  const log = options.log ?? silentLogger;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const urls = options.address
    ? [remoteUrl(options.address.trim())]
    : token.addresses.map((a) => remoteUrl(a));
  const { url, fetched } = await reachTokenServer(urls, token.fingerprint, timeoutMs, log);
  log.info(
    `incus trust token: ${url} presents the token's certificate (SHA-256 ${fetched.certificate.fingerprint}); redeeming`,
  );
  const rest = new IncusRestClient(
    { url, clientCert: client.cert, clientKey: client.key, serverCert: fetched.pem, timeoutMs },
    log,
  );
  try {
    try {
      await rest.call('POST', '/1.0/certificates', { body: { trust_token: token.text } });
    } catch (err) {
      throw refusal(err, url);
    }
    try {
      const server = await rest.call<IncusServer>('GET', '/1.0');
      if (server.metadata.auth !== 'trusted')
        throw new NotAuthorizedError(
          `${url} accepted the trust token but does not trust this client (auth: ${server.metadata.auth ?? 'none'}).`,
        );
      const version = `Incus ${server.metadata.environment?.server_version ?? 'unknown'}`;
      log.info(`incus trust token: ${url} trusts client certificate ${client.fingerprint} (${version})`);
      return { url, serverCert: fetched.pem, version };
    } catch (err) {
      await removeOwnTrust(rest, client.fingerprint, log);
      throw err;
    }
  } finally {
    rest.close();
  }
}

async function removeOwnTrust(rest: IncusRestClient, fingerprint: string, log: Logger): Promise<boolean> {
  try {
    await rest.call('DELETE', `/1.0/certificates/${fingerprint}`);
    log.info(`incus: removed this client's trust entry ${fingerprint} from ${rest.endpoint}`);
    return true;
  } catch (err) {
    log.warn(
      `incus: could not remove this client's trust entry ${fingerprint} from ${rest.endpoint}: ${String(err)}`,
    );
    return false;
  }
}

/** forgetTrust with the identity in memory (PEM contents), before anything was stored. */
export async function forgetTrustWith(
  url: string,
  client: ClientCertificate,
  serverCert: string,
  log: Logger = silentLogger,
): Promise<boolean> {
  const rest = new IncusRestClient(
    { url, clientCert: client.cert, clientKey: client.key, serverCert, timeoutMs: 10_000 },
    log,
  );
  try {
    return await removeOwnTrust(rest, client.fingerprint, log);
  } finally {
    rest.close();
  }
}

/**
 * Deletes this client's own trust entry on the server (Incus lets a client delete its own certificate), e.g.
 * when a server added with a token is removed again or a later step of adding it failed. `files` are the PEM
 * paths of the stored identity. False when it could not.
 */
export async function forgetTrust(
  files: { url: string; clientCert: string; clientKey: string; serverCert: string },
  fingerprint: string,
  log: Logger = silentLogger,
): Promise<boolean> {
  const rest = new IncusRestClient(
    { ...connectionOptions({ serverId: '', ...files }), timeoutMs: 10_000 },
    log,
  );
  try {
    return await removeOwnTrust(rest, fingerprint, log);
  } finally {
    rest.close();
  }
}

/** The server's answer to a refused token, as what happened and what to do. */
function refusal(err: unknown, url: string): unknown {
  if (!(err instanceof NotAuthorizedError)) return err;
  const again = 'Make a new one on the Incus host: `incus config trust add <name>`.';
  if (/expired/i.test(err.message))
    return new TrustTokenRefusedError(`${url} says the trust token has expired. ${again}`, { cause: err });
  return new TrustTokenRefusedError(
    `${url} did not accept the trust token: it has been used already, was revoked, or the Incus daemon ` +
      `restarted since it was made (tokens are single use and kept in memory). ${again}`,
    { cause: err },
  );
}
