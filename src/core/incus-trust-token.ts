// An Incus trust token as `incus config trust add <name>` prints it: base64 of the JSON {client_name, fingerprint,
// addresses, secret, expires_at} (lxc/incus shared/api/certificate.go, CertificateAddToken). Decoding is pure and
// cheap, so the Add Server step checks a pasted token as you type, before the Incus layer loads.
import { ValidationError } from './errors';
import { registerSecret } from './log';

export interface IncusTrustToken {
  /** The name the host gave (`incus config trust add <name>`): the trust entry's name. */
  clientName: string;
  /** SHA-256 of the server's network certificate, lowercase hex. */
  fingerprint: string;
  /** host:port pairs the server listens on, in the server's order. */
  addresses: string[];
  /** When the token stops working, if the server sets an expiry (core.remote_token_expiry). */
  expiresAt?: Date;
  /** The token as pasted (whitespace removed): what the server wants back. */
  text: string;
}

const GARBLED =
  'That is not an Incus trust token. Run `incus config trust add <name>` on the Incus host and paste the whole ' +
  'line it prints (one long run of letters and digits).';

/** Decodes and checks a pasted token; a garbled, partial, expired or wrong kind of token gets its own sentence. */
export function decodeTrustToken(input: string, now: Date = new Date()): IncusTrustToken {
  const text = input.replace(/\s+/g, ''); // a terminal may wrap a long token over lines
  if (text === '') throw new ValidationError('Paste the trust token.');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0)
    throw new ValidationError(`${GARBLED} (It has characters or a length a token cannot have: cut short?)`);
  let fields: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    fields = parsed as Record<string, unknown>;
  } catch {
    throw new ValidationError(GARBLED);
  }
  if (typeof fields.server_name === 'string' && fields.client_name === undefined)
    throw new ValidationError(
      'That is a cluster join token (`incus cluster add`), for a new cluster member. A client needs a trust token: ' +
        '`incus config trust add <name>` on the Incus host.',
    );
  const missing = ['client_name', 'fingerprint', 'secret'].filter(
    (k) => typeof fields[k] !== 'string' || fields[k] === '',
  );
  const addresses = Array.isArray(fields.addresses)
    ? fields.addresses.filter((a): a is string => typeof a === 'string' && a !== '')
    : [];
  if (addresses.length === 0) missing.push('addresses');
  if (missing.length) throw new ValidationError(`${GARBLED} (It has no ${missing.join(', ')}.)`);
  const fingerprint = (fields.fingerprint as string).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(fingerprint))
    throw new ValidationError(`${GARBLED} (Its server fingerprint is not a SHA-256 fingerprint.)`);
  let expiresAt: Date | undefined;
  if (typeof fields.expires_at === 'string') {
    const t = new Date(fields.expires_at);
    // Go's zero time (0001-01-01) means "no expiry".
    if (!Number.isNaN(t.getTime()) && t.getUTCFullYear() > 1) expiresAt = t;
  }
  if (expiresAt && expiresAt < now)
    throw new ValidationError(
      `That trust token expired at ${expiresAt.toISOString()}. Make a new one on the Incus host: ` +
        '`incus config trust add <name>`.',
    );
  registerSecret(text);
  registerSecret(fields.secret as string);
  return { clientName: fields.client_name as string, fingerprint, addresses, expiresAt, text };
}
