// Reads back what code-server's workbench keeps as SecretStorage (docs/security.md): the browser's localStorage
// item "secrets.provider", sealed as base64(clientKey[32] | iv[12] | AES-256-GCM ciphertext + tag[16]) with the key
// clientKey XOR <user-data-dir>/serve-web-key-half. The secret-canary test uses it to show the API key really is
// there, sealed (the plain-text scan of the same files finds nothing), and nowhere else.
import { createDecipheriv } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const BLOCK = 32 * 1024;
const HEADER = 7;

/** The logical records of a leveldb log file (physical records of 32 KiB blocks put back together). */
function logRecords(bytes: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let pending: Buffer[] = [];
  for (let block = 0; block < bytes.length; block += BLOCK) {
    let at = block;
    const end = Math.min(block + BLOCK, bytes.length);
    while (at + HEADER <= end) {
      const length = bytes.readUInt16LE(at + 4);
      const type = bytes[at + 6];
      if (type === 0 && length === 0) break; // the zero-filled trailer of a block
      const payload = bytes.subarray(at + HEADER, at + HEADER + length);
      at += HEADER + length;
      if (type === 1)
        records.push(payload); // FULL
      else if (type === 2)
        pending = [payload]; // FIRST
      else if (type === 3)
        pending.push(payload); // MIDDLE
      else if (type === 4) records.push(Buffer.concat([...pending, payload])); // LAST
    }
  }
  return records;
}

/** Every value ever written to "secrets.provider" in the profile's localStorage logs, unsealed, oldest first. */
export function codeServerSecrets(chromiumProfile: string, userDataDir: string): Record<string, string>[] {
  const serverHalf = readFileSync(join(userDataDir, 'serve-web-key-half'));
  const dir = join(chromiumProfile, 'Default', 'Local Storage', 'leveldb');
  const logs = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.log')) : [];
  const found: Record<string, string>[] = [];
  for (const log of logs.sort()) {
    for (const record of logRecords(readFileSync(join(dir, log)))) {
      const text = record.toString('latin1');
      // A write batch: …<key "_<origin>\0\x01secrets.provider"><varint length>\x01<base64>…
      // eslint-disable-next-line no-control-regex -- \x01 is localStorage's Latin-1 marker, a byte of the format
      for (const m of text.matchAll(/secrets\.provider[\s\S]{1,3}?\x01([A-Za-z0-9+/]{80,}={0,2})/g)) {
        const unsealed = unseal(Buffer.from(m[1], 'base64'), serverHalf);
        if (unsealed) found.push(unsealed);
      }
    }
  }
  return found;
}

/** One sealed value opened, or undefined if it does not open (not a sealed value after all). */
function unseal(sealed: Buffer, serverHalf: Buffer): Record<string, string> | undefined {
  try {
    const key = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) key[i] = sealed[i] ^ serverHalf[i];
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(32, 44));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plain = Buffer.concat([decipher.update(sealed.subarray(44, sealed.length - 16)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as Record<string, string>;
  } catch {
    return undefined;
  }
}
