// Transport security rules: no API key over plain ws:// to anything but loopback, TLS verified or pinned.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { SecurityError } from '../../core/errors';

/** `AB:cd:…` or `abcd…` (64 hex digits) → `ABCD…`; anything else is refused with a clear error. */
export function normalizeFingerprint(input: string): string {
  const hex = input
    .trim()
    .replace(/^sha256[:=]?\s*/i, '')
    .replace(/[:\s-]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new SecurityError(
      'The pinned TLS fingerprint must be a SHA-256 fingerprint: 64 hex digits, with or without colons.',
    );
  }
  return hex;
}

/** `ABCD…` → `AB:CD:…`, the form browsers and openssl show. */
export function formatFingerprint(hex: string): string {
  return normalizeFingerprint(hex).match(/../g)!.join(':');
}

/** True for localhost, 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    if (h === '::1' || /^0*:(0*:){0,6}0*1$/.test(h) || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped ? mapped[1].startsWith('127.') : false;
  }
  return false;
}

/** Throws before any socket is opened when the transport would expose the API key. */
export function assertTransportAllowed(host: string, secure: boolean): void {
  if (!secure && !isLoopbackHost(host)) {
    throw new SecurityError(
      `Refusing to send the API key to ${host} over plain ws://: TrueNAS revokes a key used without TLS. ` +
        'Use wss:// (secure), and pin the certificate fingerprint if it is self-signed.',
    );
  }
}

/** The server's certificate is not trusted; `fingerprint` (AB:CD:… form) lets the editor offer to pin it. */
export class UntrustedCertificateError extends SecurityError {
  constructor(
    message: string,
    readonly fingerprint: string,
  ) {
    super(message);
  }
}

export type TlsVerdict =
  { ok: true; fingerprint: string; how: 'ca' | 'pin' } | { ok: false; error: SecurityError };

/**
 * Decides whether a TLS peer may receive our API key: a certificate that the system CAs verify for this host,
 * or one whose SHA-256 fingerprint equals the pin. Never a silent skip.
 */
export function judgePeer(socket: tls.TLSSocket, host: string, pin: string | undefined): TlsVerdict {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) {
    return { ok: false, error: new SecurityError(`The server at ${host} presented no TLS certificate.`) };
  }
  const actual = normalizeFingerprint(cert.fingerprint256);
  if (pin !== undefined) {
    if (actual === normalizeFingerprint(pin)) return { ok: true, fingerprint: actual, how: 'pin' };
    return {
      ok: false,
      error: new UntrustedCertificateError(
        `The TLS certificate of ${host} does not match the pinned fingerprint: the server presented ` +
          `${formatFingerprint(actual)}. The API key was not sent.`,
        formatFingerprint(actual),
      ),
    };
  }
  const identityError = socket.authorized ? tls.checkServerIdentity(host, cert) : undefined;
  if (socket.authorized && !identityError) return { ok: true, fingerprint: actual, how: 'ca' };
  const why = identityError?.message ?? String(socket.authorizationError ?? 'unverified certificate');
  return {
    ok: false,
    error: new UntrustedCertificateError(
      `The TLS certificate of ${host} cannot be verified (${why}). If this is your TrueNAS's own ` +
        `self-signed certificate, pin its SHA-256 fingerprint: ${formatFingerprint(actual)}. The API key was not sent.`,
      formatFingerprint(actual),
    ),
  };
}
