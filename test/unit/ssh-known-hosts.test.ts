// KnownHosts: add/replace/remove per sandbox alias and address, other lines keep their bytes, hashed entries
// are found and removed, and OpenSSH's own ssh-keygen reads the file the same way.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ValidationError } from '../../src/core/errors';
import { generateHostKey } from '../../src/ssh/keys';
import { KnownHosts } from '../../src/ssh/known-hosts';

const KEYGEN = '/usr/bin/ssh-keygen';
const keyOnly = (line: string) => line.split(' ').slice(0, 2).join(' ');

describe('KnownHosts', () => {
  let dir: string;
  before(async () => {
    if (!existsSync(KEYGEN))
      throw new Error(`ssh-keygen not found at ${KEYGEN}: apt-get install -y openssh-client`);
    dir = await fs.mkdtemp(join(tmpdir(), 'pixels-kh-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('adds, replaces, follows IP changes and removes, leaving other lines alone', async () => {
    const path = join(dir, 'sub', 'known_hosts');
    const kh = new KnownHosts(path);
    const foreign = [
      '# my notes',
      '@cert-authority *.corp ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake',
      'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
      '',
    ];
    await fs.mkdir(join(dir, 'sub'), { recursive: true });
    await fs.writeFile(path, foreign.join('\n') + '\n');

    const first = generateHostKey();
    await kh.set(['px-dev', '10.0.0.5'], first.publicOpenSsh);
    assert.deepEqual(await kh.lookup('px-dev'), [keyOnly(first.publicOpenSsh)]);
    assert.deepEqual(await kh.lookup('10.0.0.5'), [keyOnly(first.publicOpenSsh)]);
    // OpenSSH finds it too.
    assert.match(
      execFileSync(KEYGEN, ['-F', 'px-dev', '-f', path]).toString(),
      /px-dev,10\.0\.0\.5 ssh-ed25519/,
    );

    // Restart with a new IP: the old address goes with the old line.
    await kh.set(['px-dev', '10.0.0.9'], first.publicOpenSsh);
    assert.deepEqual(await kh.lookup('10.0.0.5'), []);
    assert.deepEqual(await kh.lookup('10.0.0.9'), [keyOnly(first.publicOpenSsh)]);

    // A clone gets a new key; an IP reused by another sandbox is taken off the old line.
    const clone = generateHostKey();
    await kh.set(['px-clone', '10.0.0.9'], clone.publicOpenSsh);
    assert.deepEqual(await kh.lookup('10.0.0.9'), [keyOnly(clone.publicOpenSsh)]);
    assert.deepEqual(await kh.lookup('px-dev'), [keyOnly(first.publicOpenSsh)]);

    // Non-default port entries use OpenSSH's [host]:port form.
    await kh.set(['px-port'], first.publicOpenSsh, 2222);
    assert.match(await fs.readFile(path, 'utf8'), /^\[px-port\]:2222 ssh-ed25519 /m);
    assert.deepEqual(await kh.lookup('px-port', 2222), [keyOnly(first.publicOpenSsh)]);
    assert.deepEqual(await kh.lookup('px-port'), []);

    await kh.remove(['px-dev']);
    await kh.remove(['px-clone', '10.0.0.9']);
    await kh.remove(['px-port'], 2222);
    assert.equal(await fs.readFile(path, 'utf8'), foreign.join('\n') + '\n', 'foreign lines byte for byte');
    assert.equal(statSync(path).mode & 0o777, 0o644, 'the existing mode is kept');
  });

  it('finds and removes hashed entries (HashKnownHosts yes)', async () => {
    const path = join(dir, 'hashed');
    const key = generateHostKey();
    const other = generateHostKey();
    await fs.writeFile(
      path,
      `px-old ${keyOnly(key.publicOpenSsh)}\nkeep.example ${keyOnly(other.publicOpenSsh)}\n`,
    );
    execFileSync(KEYGEN, ['-H', '-f', path], { stdio: 'ignore' });
    await fs.rm(`${path}.old`, { force: true });
    const kh = new KnownHosts(path);
    assert.deepEqual(await kh.lookup('px-old'), [keyOnly(key.publicOpenSsh)]);
    await kh.remove(['px-old']);
    assert.deepEqual(await kh.lookup('px-old'), []);
    assert.deepEqual(await kh.lookup('keep.example'), [keyOnly(other.publicOpenSsh)]);
    assert.equal((await fs.readFile(path, 'utf8')).trim().split('\n').length, 1);
  });

  it('creates a new file 0600 and rejects bad input without writing', async () => {
    const path = join(dir, 'new', 'known_hosts');
    const kh = new KnownHosts(path);
    await assert.rejects(
      kh.set(['px-x'], 'ssh-ed25519 AAAA\nevil.example ssh-ed25519 AAAA'),
      ValidationError,
    );
    await assert.rejects(kh.set(['px x'], generateHostKey().publicOpenSsh), ValidationError);
    await assert.rejects(kh.set([], generateHostKey().publicOpenSsh), ValidationError);
    assert.equal(existsSync(path), false);
    await kh.set(['px-x'], generateHostKey().publicOpenSsh);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('keeps every entry when many writers update at once', async () => {
    const kh = new KnownHosts(join(dir, 'busy'));
    const keys = Array.from({ length: 30 }, () => generateHostKey());
    await Promise.all(
      keys.map((k, i) => new KnownHosts(kh.path).set([`px-${i}`, `10.1.0.${i}`], k.publicOpenSsh)),
    );
    for (let i = 0; i < keys.length; i++)
      assert.deepEqual(await kh.lookup(`px-${i}`), [keyOnly(keys[i]!.publicOpenSsh)]);
  });
});
