// Transport security rules: no API key over plain ws:// to anything but loopback, TLS verified or pinned.
import * as tls from 'node:tls';
import { formatFingerprint, normalizeFingerprint, UntrustedCertificateError } from '../../core/certificate';
import { SecurityError } from '../../core/errors';
import { isLoopbackHost } from '../../core/server-address';

/** Throws before any socket is opened when the transport would expose the API key. */
export function assertTransportAllowed(host: string, secure: boolean): void {
  if (!secure && !isLoopbackHost(host)) {
    throw new SecurityError(
      `Refusing to send the API key to ${host} over plain ws://: TrueNAS revokes a key used without TLS. ` +
        'Use wss:// (secure), and trust the certificate if it is self-signed.',
    );
  }
}

export type TlsVerdict =
  { ok: true; fingerprint: string; how: 'ca' | 'pin' } | { ok: false; error: SecurityError };

/**
 * Decides whether a TLS peer may receive our API key: a certificate that the system CAs verify for this host,
 * or one whose SHA-256 fingerprint equals the pin. Never a silent skip, and a pin that no longer matches is never
 * replaced here: the person decides (the editor's "Trust New Certificate…").
 */
export function judgePeer(socket: tls.TLSSocket, host: string, pin: string | undefined): TlsVerdict {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) {
    return { ok: false, error: new SecurityError(`The server at ${host} presented no TLS certificate.`) };
  }
  const actual = normalizeFingerprint(cert.fingerprint256);
  if (pin !== undefined) {
    const pinned = normalizeFingerprint(pin);
    if (actual === pinned) return { ok: true, fingerprint: actual, how: 'pin' };
    return {
      ok: false,
      error: new UntrustedCertificateError(
        `The TLS certificate of ${host} does not match the pinned fingerprint: pinned ${formatFingerprint(pinned)}, ` +
          `the server now presents ${formatFingerprint(actual)}. The API key was not sent. Trust the new ` +
          'certificate only if you replaced it on the NAS yourself.',
        host,
        formatFingerprint(actual),
        formatFingerprint(pinned),
      ),
    };
  }
  const identityError = socket.authorized ? tls.checkServerIdentity(host, cert) : undefined;
  if (socket.authorized && !identityError) return { ok: true, fingerprint: actual, how: 'ca' };
  const why = identityError?.message ?? String(socket.authorizationError ?? 'unverified certificate');
  return {
    ok: false,
    error: new UntrustedCertificateError(
      `The TLS certificate of ${host} cannot be verified (${why}); its SHA-256 fingerprint is ` +
        `${formatFingerprint(actual)}. The API key was not sent. If this is your TrueNAS's own ` +
        'self-signed certificate, trust it (Add Server, or "Trust New Certificate…").',
      host,
      formatFingerprint(actual),
    ),
  };
}
