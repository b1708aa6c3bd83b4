// A self-signed X.509 client certificate made in-process (no openssl on the user's machine, no dependency): an
// ECDSA P-384 key and a certificate for TLS client authentication, as `incus remote add` makes for itself. Node
// can make keys and sign, but not build certificates, so the few DER structures a certificate needs are encoded
// here; X509Certificate parses the result back as a check.
import { generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';

export interface ClientCertificate {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key: a secret, never logged or put in settings. */
  key: string;
  /** SHA-256 of the certificate, lowercase hex without colons (how Incus names trust entries). */
  fingerprint: string;
}

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const explicit = (n: number, item: Buffer) => tlv(0xa0 + n, item);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const octets = (b: Buffer) => tlv(0x04, b);
/** A BIT STRING; `unused` trailing bits of the last byte (DER: a named-bit list drops its trailing zeros). */
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
const TRUE = tlv(0x01, Buffer.from([0xff]));

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const chunk = [n % 128];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v % 128));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

function name(commonName: string, organization: string): Buffer {
  return sequence(
    set(sequence(oid('2.5.4.10'), utf8(organization))),
    set(sequence(oid('2.5.4.3'), utf8(commonName))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [TRUE] : []), octets(value));
}

const ECDSA_SHA384 = sequence(oid('1.2.840.10045.4.3.3'));

export interface ClientCertificateOptions {
  commonName: string;
  organization?: string;
  /** Default 10 years, as the Incus client's own certificate. */
  days?: number;
  now?: Date;
}

export function makeClientCertificate(options: ClientCertificateOptions): ClientCertificate {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const now = options.now ?? new Date();
  const notBefore = new Date(now.getTime() - 60_000); // a minute of clock skew
  const notAfter = new Date(now.getTime() + (options.days ?? 3650) * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive and minimal: no leading zero byte needed
  const subject = name(options.commonName, options.organization ?? 'Pixels for VS Code');
  const tbs = sequence(
    explicit(0, tlv(0x02, Buffer.from([2]))), // v3
    tlv(0x02, serial),
    ECDSA_SHA384,
    subject, // self-signed: the issuer is the subject
    sequence(time(notBefore), time(notAfter)),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      sequence(
        extension('2.5.29.15', true, bits(Buffer.from([0x80]), 7)), // keyUsage: digitalSignature
        extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.2'))), // extKeyUsage: clientAuth
        extension('2.5.29.19', true, sequence()), // basicConstraints: not a CA
      ),
    ),
  );
  const signature = sign('sha384', tbs, privateKey); // DER-encoded ECDSA signature, as X.509 wants
  const der = sequence(tbs, ECDSA_SHA384, bits(signature));
  const x509 = new X509Certificate(der);
  if (!x509.verify(publicKey) || !x509.checkPrivateKey(privateKey))
    throw new Error('The client certificate just made does not verify against its own key.');
  return {
    cert: x509.toString(),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    fingerprint: x509.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}
