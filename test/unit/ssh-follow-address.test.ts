// followAddresses: a sandbox whose IP changed gets its SSH config entry and its known_hosts address line moved
// (same pinned key); other entries, other servers' entries and the user's own config lines stay as they were.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateHostKey } from '../../src/core/keys';
import { followAddresses } from '../../src/ssh/follow-address';
import { KnownHosts } from '../../src/ssh/known-hosts';
import { SshConfigWriter } from '../../src/ssh/ssh-config';

/** known_hosts keeps `type base64`, without the key's comment. */
function withoutComment(key: string): string {
  return key.split(' ').slice(0, 2).join(' ');
}

describe('followAddresses', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(join(tmpdir(), 'px-follow-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function setup(name: string) {
    const base = join(dir, name);
    await fs.mkdir(base, { recursive: true });
    const configPath = join(base, 'ssh_config');
    const userConfig = 'Host mine\n  HostName 203.0.113.9\n';
    await fs.writeFile(configPath, userConfig);
    const writer = new SshConfigWriter({
      configPath,
      hostsPath: join(base, 'pixels', 'config'),
      sshBinary: false,
    });
    const knownHosts = new KnownHosts(join(base, 'pixels', 'known_hosts'));
    const entry = (alias: string, hostName: string) => ({
      alias,
      hostName,
      user: 'pixel',
      identityFile: join(base, 'id'),
      knownHostsFile: knownHosts.path,
    });
    return { configPath, userConfig, writer, knownHosts, entry };
  }

  it('moves the entry and the known_hosts address of a sandbox whose IP changed, keeping its key', async () => {
    const { configPath, userConfig, writer, knownHosts, entry } = await setup('moved');
    const keyA = withoutComment(generateHostKey('a').publicOpenSsh);
    const keyB = withoutComment(generateHostKey('b').publicOpenSsh);
    await writer.upsertHost(entry('px-a.s1', '10.0.0.5'));
    await writer.upsertHost(entry('px-b.s1', '10.0.0.6'));
    await writer.upsertHost(entry('px-a.s2', '10.0.0.5')); // same name on another server
    await knownHosts.set(['px-a.s1', '10.0.0.5'], keyA);
    await knownHosts.set(['px-b.s1', '10.0.0.6'], keyB);
    const userBefore = await fs.readFile(configPath, 'utf8');
    assert.ok(userBefore.includes(userConfig), "the user's own lines are kept");

    const changes = await followAddresses({
      writer,
      knownHosts,
      sandboxes: [
        { name: 'a', ipv4: '10.0.0.77' },
        { name: 'b', ipv4: '10.0.0.6' },
        { name: 'c', ipv4: '10.0.0.8' },
      ],
      aliasOf: (n) => `px-${n}.s1`,
    });

    assert.deepEqual(changes, [{ alias: 'px-a.s1', from: '10.0.0.5', to: '10.0.0.77', keyMoved: true }]);
    const hosts = new Map((await writer.hosts()).map((h) => [h.alias, h.hostName]));
    assert.deepEqual(Object.fromEntries(hosts), {
      'px-a.s1': '10.0.0.77',
      'px-b.s1': '10.0.0.6',
      'px-a.s2': '10.0.0.5',
    });
    assert.deepEqual(await knownHosts.lookup('10.0.0.77'), [keyA]);
    assert.deepEqual(await knownHosts.lookup('px-a.s1'), [keyA]);
    assert.deepEqual(await knownHosts.lookup('10.0.0.5'), [], 'the old address is no longer trusted');
    assert.deepEqual(await knownHosts.lookup('10.0.0.6'), [keyB]);
    assert.equal(await fs.readFile(configPath, 'utf8'), userBefore, "the user's config is untouched");

    // A second pass with the same data changes nothing.
    const again = await followAddresses({
      writer,
      knownHosts,
      sandboxes: [{ name: 'a', ipv4: '10.0.0.77' }],
      aliasOf: (n) => `px-${n}.s1`,
    });
    assert.deepEqual(again, []);
  });

  it('leaves a stopped sandbox (no IP) and a sandbox without an entry alone, and writes nothing without entries', async () => {
    const { writer, knownHosts, entry } = await setup('quiet');
    assert.deepEqual(
      await followAddresses({
        writer,
        knownHosts,
        sandboxes: [{ name: 'a', ipv4: '10.0.0.1' }],
        aliasOf: (n) => `px-${n}.s1`,
      }),
      [],
    );
    await assert.rejects(fs.stat(writer.hostsPath), { code: 'ENOENT' });
    await assert.rejects(fs.stat(knownHosts.path), { code: 'ENOENT' });

    await writer.upsertHost(entry('px-a.s1', '10.0.0.5'));
    const changes = await followAddresses({
      writer,
      knownHosts,
      sandboxes: [{ name: 'a' }, { name: 'z', ipv4: '10.0.0.9' }],
      aliasOf: (n) => `px-${n}.s1`,
    });
    assert.deepEqual(changes, []);
    assert.equal((await writer.hosts())[0]!.hostName, '10.0.0.5');
  });

  it('moves the entry even when no key is pinned (and says so)', async () => {
    const { writer, knownHosts, entry } = await setup('nokey');
    await writer.upsertHost(entry('px-a.s1', '10.0.0.5'));
    const changes = await followAddresses({
      writer,
      knownHosts,
      sandboxes: [{ name: 'a', ipv4: '10.0.0.50' }],
      aliasOf: (n) => `px-${n}.s1`,
    });
    assert.deepEqual(changes, [{ alias: 'px-a.s1', from: '10.0.0.5', to: '10.0.0.50', keyMoved: false }]);
    assert.equal((await writer.hosts())[0]!.hostName, '10.0.0.50');
    assert.deepEqual(await knownHosts.lookup('10.0.0.50'), []);
  });
});
