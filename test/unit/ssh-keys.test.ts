// Keys: generated pairs are real OpenSSH keys (checked with ssh-keygen), fingerprints match OpenSSH's,
// user identities load from disk, and the dedicated key is created once with safe modes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, ValidationError } from '../../src/core/errors';
import {
  ensureDedicatedIdentity,
  fingerprint,
  generateHostKey,
  loadUserIdentity,
  parsePublicKey,
} from '../../src/ssh/keys';

const KEYGEN = '/usr/bin/ssh-keygen';

describe('ssh keys', () => {
  let dir: string;
  before(async () => {
    if (!existsSync(KEYGEN))
      throw new Error(`ssh-keygen not found at ${KEYGEN}: apt-get install -y openssh-client`);
    dir = await fs.mkdtemp(join(tmpdir(), 'pixels-keys-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('generates ed25519 pairs that OpenSSH reads, with matching fingerprints', async () => {
    const pair = generateHostKey('px-test');
    assert.match(pair.privateOpenSsh, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.match(pair.publicOpenSsh, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ px-test$/);
    const file = join(dir, 'host');
    await fs.writeFile(file, pair.privateOpenSsh, { mode: 0o600 });
    const derived = execFileSync(KEYGEN, ['-y', '-f', file]).toString().trim();
    assert.equal(
      derived.split(' ').slice(0, 2).join(' '),
      pair.publicOpenSsh.split(' ').slice(0, 2).join(' '),
    );
    await fs.writeFile(`${file}.pub`, pair.publicOpenSsh + '\n');
    const listed = execFileSync(KEYGEN, ['-l', '-E', 'sha256', '-f', `${file}.pub`]).toString();
    assert.ok(
      listed.includes(fingerprint(pair.publicOpenSsh)),
      `${listed} vs ${fingerprint(pair.publicOpenSsh)}`,
    );
    assert.notEqual(generateHostKey().publicOpenSsh, pair.publicOpenSsh, 'every call makes a new key');
  });

  it('parses public keys strictly', () => {
    const { publicOpenSsh } = generateHostKey('c');
    const parsed = parsePublicKey(publicOpenSsh);
    assert.equal(parsed.type, 'ssh-ed25519');
    assert.equal(parsed.comment, 'c');
    assert.throws(() => parsePublicKey(publicOpenSsh + '\nssh-ed25519 AAAA evil'), ValidationError);
    assert.throws(() => parsePublicKey('not a key'), ValidationError);
    // Type on the line and inside the blob must agree.
    assert.throws(() => parsePublicKey(publicOpenSsh.replace('ssh-ed25519', 'ssh-rsa')), ValidationError);
  });

  it('loads an existing identity, deriving the public key when there is no .pub', async () => {
    const file = join(dir, 'id_ed25519');
    execFileSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@host', '-f', file]);
    const withPub = await loadUserIdentity(file);
    assert.equal(withPub.publicOpenSsh, (await fs.readFile(`${file}.pub`, 'utf8')).trim());
    await fs.rm(`${file}.pub`);
    const derived = await loadUserIdentity(file);
    assert.equal(
      derived.publicOpenSsh.split(' ').slice(0, 2).join(' '),
      withPub.publicOpenSsh.split(' ').slice(0, 2).join(' '),
    );
    await assert.rejects(loadUserIdentity(join(dir, 'missing')), NotFoundError);
    const locked = join(dir, 'locked');
    execFileSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', 'secret', '-f', locked]);
    await assert.rejects(loadUserIdentity(locked), /passphrase/);
  });

  it('creates the dedicated key once (0600 in a 0700 folder) and reuses it', async () => {
    const file = join(dir, 'fresh', 'pixels', 'id_ed25519');
    const first = await ensureDedicatedIdentity(file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'fresh', 'pixels')).mode & 0o777, 0o700);
    assert.equal((await fs.readFile(`${file}.pub`, 'utf8')).trim(), first.publicOpenSsh);
    const second = await ensureDedicatedIdentity(file);
    assert.equal(second.publicOpenSsh, first.publicOpenSsh);
    assert.ok(second.privateKey.equals(first.privateKey));
    // Two windows at once: both end up with the same key.
    const other = join(dir, 'race', 'id_ed25519');
    const [a, b] = await Promise.all([ensureDedicatedIdentity(other), ensureDedicatedIdentity(other)]);
    assert.equal(a.publicOpenSsh.split(' ')[1], b.publicOpenSsh.split(' ')[1]);
  });
});
