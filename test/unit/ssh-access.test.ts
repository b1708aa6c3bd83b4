// prepareSandboxAccess against an in-memory Backend (the boundary; real backends are tested by their owners):
// host key files with the right modes, the user key APPENDED for root and pixel, known_hosts recorded.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Backend } from '../../src/core/backend';
import { ValidationError } from '../../src/core/errors';
import type { WriteFileOptions } from '../../src/core/sandbox';
import { prepareSandboxAccess } from '../../src/ssh/access';
import { generateHostKey, generateKeyPair } from '../../src/ssh/keys';
import { KnownHosts } from '../../src/ssh/known-hosts';

interface StoredFile {
  content: Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** Only writeFile is reachable from prepareSandboxAccess; everything else fails loudly if touched. */
function memoryBackend(files: Map<string, StoredFile>): Backend {
  const unexpected = () => {
    throw new Error('prepareSandboxAccess must only write files');
  };
  const backend = {
    kind: 'incus',
    serverId: 'mem',
    async writeFile(name: string, path: string, content: Buffer, options: WriteFileOptions = {}) {
      const key = `${name}:${path}`;
      const existing = files.get(key);
      const data = options.append && existing ? Buffer.concat([existing.content, content]) : content;
      files.set(key, { content: data, mode: options.mode, uid: options.uid, gid: options.gid });
    },
    info: unexpected,
    capabilities: unexpected,
    list: unexpected,
    get: unexpected,
    create: unexpected,
    start: unexpected,
    stop: unexpected,
    restart: unexpected,
    destroy: unexpected,
    listCheckpoints: unexpected,
    createCheckpoint: unexpected,
    restoreCheckpoint: unexpected,
    deleteCheckpoint: unexpected,
    clone: unexpected,
    onDidChange: unexpected,
    dispose: () => {},
  };
  return backend as unknown as Backend;
}

describe('prepareSandboxAccess', () => {
  it('writes the host key and appends the user key for root and pixel', async () => {
    const files = new Map<string, StoredFile>();
    const existingKey =
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl other-machine';
    files.set('dev:/root/.ssh/authorized_keys', { content: Buffer.from(existingKey) }); // no final newline
    const hostKey = generateHostKey();
    const user = generateKeyPair('me@laptop');
    const dir = await fs.mkdtemp(join(tmpdir(), 'pixels-access-'));
    try {
      const knownHosts = new KnownHosts(join(dir, 'known_hosts'));
      await prepareSandboxAccess(memoryBackend(files), 'dev', {
        userPublicKey: user.publicOpenSsh,
        hostKey,
        knownHosts: { file: knownHosts, names: ['px-dev', '10.0.0.5'] },
      });
      const priv = files.get('dev:/etc/ssh/ssh_host_ed25519_key')!;
      assert.equal(priv.content.toString(), hostKey.privateOpenSsh);
      assert.deepEqual([priv.mode, priv.uid, priv.gid], [0o600, 0, 0]);
      const pub = files.get('dev:/etc/ssh/ssh_host_ed25519_key.pub')!;
      assert.equal(pub.content.toString(), hostKey.publicOpenSsh + '\n');
      assert.equal(pub.mode, 0o644);

      const rootKeys = files
        .get('dev:/root/.ssh/authorized_keys')!
        .content.toString()
        .split('\n')
        .filter(Boolean);
      assert.deepEqual(
        rootKeys,
        [existingKey, user.publicOpenSsh],
        'appended: the other machine keeps its access',
      );
      const pixel = files.get('dev:/home/pixel/.ssh/authorized_keys')!;
      assert.deepEqual(pixel.content.toString().split('\n').filter(Boolean), [user.publicOpenSsh]);
      assert.deepEqual([pixel.mode, pixel.uid, pixel.gid], [0o600, 1000, 1000]);

      assert.deepEqual(await knownHosts.lookup('px-dev'), [
        hostKey.publicOpenSsh.split(' ').slice(0, 2).join(' '),
      ]);
      assert.deepEqual(await knownHosts.lookup('10.0.0.5'), [
        hostKey.publicOpenSsh.split(' ').slice(0, 2).join(' '),
      ]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('skips pixel when asked and refuses keys that could smuggle in extra lines, before writing anything', async () => {
    const files = new Map<string, StoredFile>();
    const backend = memoryBackend(files);
    const hostKey = generateHostKey();
    await prepareSandboxAccess(backend, 'a', {
      userPublicKey: generateKeyPair().publicOpenSsh,
      hostKey,
      pixelUser: false,
    });
    assert.equal(files.has('a:/home/pixel/.ssh/authorized_keys'), false);
    assert.equal(files.has('a:/root/.ssh/authorized_keys'), true);

    files.clear();
    const evil = `${generateKeyPair().publicOpenSsh}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl attacker`;
    await assert.rejects(
      prepareSandboxAccess(backend, 'b', { userPublicKey: evil, hostKey }),
      ValidationError,
    );
    await assert.rejects(
      prepareSandboxAccess(backend, 'b', {
        userPublicKey: generateKeyPair().publicOpenSsh,
        hostKey: { ...hostKey, privateOpenSsh: 'junk' },
      }),
      ValidationError,
    );
    assert.equal(files.size, 0);
  });
});
