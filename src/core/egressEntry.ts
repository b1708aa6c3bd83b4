// Validation of what users type into an allow list: host names, IPv4/IPv6 addresses and CIDR ranges. Every
// refusal says exactly what is wrong, and accepted entries come back normalised (lower case, canonical IPv6,
// plain addresses as /32 or /128), so the stored list has one spelling per entry.
import { ValidationError } from './errors';
import { AddressProblem, formatAddress as format, parseIPv4, parseIPv6 } from './ip';

export type EgressEntry =
  | { kind: 'domain'; value: string }
  | {
      kind: 'cidr';
      family: 4 | 6;
      value: string;
      /** true when the user gave a single address */ single: boolean;
    };

/** The normalised entry, or throws a ValidationError naming the problem. */
export function parseEgressEntry(input: string): EgressEntry {
  const text = input.trim();
  if (text === '') throw problem(input, 'it is empty');
  if (/\s/.test(text)) throw problem(input, 'it contains spaces; enter one domain or address at a time');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text))
    throw problem(input, 'enter a host name, not a URL (drop the scheme and path)');
  if (text.includes('/') || text.includes(':') || /^[0-9.]+$/.test(text)) return parseCidr(input, text);
  return { kind: 'domain', value: parseDomain(input, text) };
}

/** Like parseEgressEntry, but returns the problem as text (or undefined when the entry is fine). */
export function egressEntryProblem(input: string): string | undefined {
  try {
    parseEgressEntry(input);
    return undefined;
  } catch (err) {
    return err instanceof ValidationError ? err.message : String(err);
  }
}

/** The normalised spelling used in stored lists. */
export function normalizeEgressEntry(input: string): string {
  return parseEgressEntry(input).value;
}

function problem(input: string, why: string): ValidationError {
  const shown = input.length > 80 ? `${input.slice(0, 77)}...` : input;
  const message = `"${shown}" is not a valid domain, address or CIDR range: ${why}.`;
  return new ValidationError(message, [{ field: 'egress', message }]);
}

function parseDomain(input: string, text: string): string {
  let name = text.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.startsWith('*.'))
    throw problem(input, 'wildcards are not supported; allow each host name (e.g. api.example.com) instead');
  if (/[^\x20-\x7e]/.test(name))
    throw problem(input, 'use the ASCII (punycode, xn--...) form of international names');
  if (name.includes('*')) throw problem(input, 'wildcards are not supported');
  if (name.length > 253) throw problem(input, 'a domain name is at most 253 characters long');
  const labels = name.split('.');
  if (labels.length < 2) throw problem(input, 'a domain needs at least two labels (e.g. example.com)');
  for (const label of labels) {
    if (label === '') throw problem(input, 'it has an empty label (two dots in a row, or a leading dot)');
    if (label.length > 63)
      throw problem(input, `the label "${label.slice(0, 20)}..." is longer than 63 characters`);
    if (!/^[a-z0-9-]+$/.test(label))
      throw problem(input, `the label "${label}" may contain only letters, digits and hyphens`);
    if (label.startsWith('-') || label.endsWith('-'))
      throw problem(input, `the label "${label}" must not start or end with a hyphen`);
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]))
    throw problem(input, 'the last label must not be all digits');
  return name;
}

function parseCidr(input: string, text: string): EgressEntry {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? undefined : text.slice(slash + 1);
  if (/^\[.*\](:\d+)?$/.test(addressText) || /^[0-9.]+:\d+$/.test(addressText))
    throw problem(input, 'ports are not supported; give the address only');
  if (/^[a-z0-9.-]+:\d+$/i.test(addressText) && /[a-z]/i.test(addressText.split(':')[0]))
    throw problem(input, 'ports are not supported; give the host name only');
  const family = addressText.includes(':') ? 6 : 4;
  const bits = address(input, family, addressText);
  const width = family === 4 ? 32 : 128;
  let prefix = width;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText))
      throw problem(input, `the prefix length "${prefixText}" is not a number`);
    prefix = Number(prefixText);
    if (prefix > width) throw problem(input, `an IPv${family} prefix length is at most ${width}`);
    if (prefix === 0) throw problem(input, 'a /0 range allows everything; use the unrestricted mode instead');
  }
  const hostMask = prefix === width ? 0n : (1n << BigInt(width - prefix)) - 1n;
  if ((bits & hostMask) !== 0n) {
    const network = format(family, bits & ~hostMask);
    throw problem(input, `host bits are set after /${prefix}; did you mean ${network}/${prefix}?`);
  }
  const shown = format(family, bits);
  return {
    kind: 'cidr',
    family,
    value: prefix === width ? shown : `${shown}/${prefix}`,
    single: prefix === width,
  };
}

/** An address parsed by src/core/ip, its problem worded for this entry. */
function address(input: string, family: 4 | 6, text: string): bigint {
  try {
    return family === 4 ? parseIPv4(text) : parseIPv6(text);
  } catch (err) {
    if (err instanceof AddressProblem) throw problem(input, err.message);
    throw err;
  }
}
