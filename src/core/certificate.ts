// A server's TLS certificate as a person checks it before trusting it: subject, issuer, validity, SHA-256
// fingerprint. fetchServerCertificate does a TLS handshake and nothing else (no HTTP request, no credentials), so
// the editor can show the certificate before any secret is sent.
import { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ConnectionError, SecurityError, TimeoutError } from './errors';

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

export function sameFingerprint(a: string, b: string): boolean {
  return normalizeFingerprint(a) === normalizeFingerprint(b);
}

/**
 * The server's certificate is not trusted (no CA vouches for it and no pin matches). `fingerprint` is the one it
 * presented (AB:CD:… form); `pinned` is set when a different certificate was pinned, i.e. the certificate changed.
 */
export class UntrustedCertificateError extends SecurityError {
  constructor(
    message: string,
    readonly host: string,
    readonly fingerprint: string,
    readonly pinned?: string,
  ) {
    super(message);
  }
}

export interface CertificateDescription {
  /** "CN=truenas.local, O=iXsystems" */
  subject: string;
  issuer: string;
  /** "DNS:truenas.local, IP Address:192.168.1.10", or '' without the extension. */
  subjectAltName: string;
  validFrom: Date;
  validTo: Date;
  /** SHA-256 of the DER certificate, AB:CD:… */
  fingerprint: string;
  /** Issued by itself and signed with its own key (what a stock TrueNAS serves). */
  selfSigned: boolean;
  validity: 'valid' | 'expired' | 'not-yet-valid';
}

/** `CN=a\nO=b` (Node's one-attribute-per-line form) → `CN=a, O=b`. */
function oneLine(name: string): string {
  return name
    .split('\n')
    .map((part) => part.trim())
    .filter(Boolean)
    .join(', ');
}

export function describeCertificate(cert: X509Certificate, now: Date = new Date()): CertificateDescription {
  const validFrom = new Date(cert.validFrom);
  const validTo = new Date(cert.validTo);
  let selfSigned: boolean;
  try {
    selfSigned = cert.checkIssued(cert) && cert.verify(cert.publicKey);
  } catch {
    selfSigned = false; // a key type the runtime cannot verify: say nothing rather than guess
  }
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    subjectAltName: cert.subjectAltName ?? '',
    validFrom,
    validTo,
    fingerprint: formatFingerprint(cert.fingerprint256),
    selfSigned,
    validity: now < validFrom ? 'not-yet-valid' : now > validTo ? 'expired' : 'valid',
  };
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The lines a trust prompt shows, in the order a person compares them. */
export function certificateLines(cert: CertificateDescription): string[] {
  const validity =
    cert.validity === 'expired' ? ' — EXPIRED' : cert.validity === 'not-yet-valid' ? ' — NOT VALID YET' : '';
  return [
    `Subject: ${cert.subject || '(empty)'}`,
    `Issuer: ${cert.selfSigned ? 'itself (self-signed)' : cert.issuer || '(empty)'}`,
    ...(cert.subjectAltName ? [`Names: ${cert.subjectAltName}`] : []),
    `Valid: ${day(cert.validFrom)} to ${day(cert.validTo)}${validity}`,
    `SHA-256: ${cert.fingerprint}`,
  ];
}

export interface FetchedCertificate {
  certificate: CertificateDescription;
  /** The certificate itself (PEM), to pin by content where a client wants the whole certificate (Incus). */
  pem: string;
  /** A system CA verified it for this host name: nothing needs pinning. */
  caTrusted: boolean;
  /** Why the system CAs did not verify it (e.g. "self-signed certificate"), when they did not. */
  caProblem?: string;
}

/** "wss://host:443 (TLS)", the words every connection error uses to say what was tried. */
export function endpointLabel(host: string, port: number, secure: boolean): string {
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${secure ? 'wss' : 'ws'}://${shown}:${port} (${secure ? 'TLS' : 'plain, no TLS'})`;
}

/** A socket error in a few words ("connection refused"), for "Cannot connect to … : <this>". */
export function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listens on that port)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'no route to the host';
  if (code === 'ETIMEDOUT' || /timed out|timeout/i.test(err.message)) return 'timed out';
  if (code === 'ECONNRESET') return 'connection reset by the server';
  if (
    code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    /wrong version number|packet length too long/i.test(err.message)
  )
    return 'the server does not speak TLS on that port (plain HTTP?)';
  return err.message.split('\n')[0];
}

function isIpLiteral(host: string): boolean {
  return net.isIP(host.replace(/^\[|\]$/g, '')) !== 0;
}

/**
 * Connects, completes the TLS handshake, reads the peer certificate and closes: no byte of application data is
 * sent. Rejects with a ConnectionError/TimeoutError naming host, port and transport.
 */
export function fetchServerCertificate(
  host: string,
  port: number,
  timeoutMs = 10_000,
): Promise<FetchedCertificate> {
  const bare = host.replace(/^\[|\]$/g, '');
  const where = endpointLabel(bare, port, true);
  return new Promise((resolve, reject) => {
    let done = false;
    const socket = tls.connect({
      host: bare,
      port,
      servername: isIpLiteral(bare) ? '' : bare,
      rejectUnauthorized: false, // judged below and by the person; nothing is sent either way
    });
    const finish = (fn: () => void, graceful = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (graceful) {
        // close_notify after the handshake, as a browser leaving the page would; then let go.
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      } else socket.destroy();
      fn();
    };
    const timer = setTimeout(
      () => finish(() => reject(new TimeoutError(`Cannot connect to ${where}: timed out.`))),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      const x509 = socket.getPeerX509Certificate();
      if (!x509)
        return finish(() =>
          reject(new SecurityError(`The server at ${where} presented no TLS certificate.`)),
        );
      const identityProblem = socket.authorized
        ? tls.checkServerIdentity(bare, socket.getPeerCertificate())
        : undefined;
      const caTrusted = socket.authorized && !identityProblem;
      const caProblem = caTrusted
        ? undefined
        : (identityProblem?.message ?? String(socket.authorizationError ?? 'not verified'));
      const certificate = describeCertificate(x509);
      finish(() => resolve({ certificate, pem: x509.toString(), caTrusted, caProblem }), true);
    });
    socket.once('error', (err) =>
      finish(() =>
        reject(
          new ConnectionError(`Cannot connect to ${where}: ${describeSocketError(err)}.`, { cause: err }),
        ),
      ),
    );
  });
}
