// Images whose default user holds uid 1000 (Ubuntu's `ubuntu`, Debian's `debian`): provisioning turns that user
// into pixel (uid/gid 1000, its files kept) instead of failing; any other owner of uid 1000 is a clear error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { buildPolicy, provision, ProvisionStepError, type Executor } from '../../../src/guest/index';
import { generateKeyPair } from '../../../src/ssh/index';
import type { Lab } from '../../lab/lab';
import { bootSandbox, labBackend, removeTestInstances, sh, testPrefix } from './helpers';

describe('the image user holding uid 1000', { timeout: 180_000 }, () => {
  const prefix = testPrefix();
  let lab: Lab;
  let backend: IncusBackend;
  const options = {
    userPublicKeys: [generateKeyPair('image-user').publicOpenSsh],
    devtools: false,
    packages: [],
    egress: buildPolicy('allowlist', ['allowed.test']),
  };

  before(async () => {
    ({ lab, backend } = await labBackend());
  });
  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
  });

  test('a default image user (debian) becomes pixel, keeps its files, loses sudo in allowlist mode', async () => {
    const exec: Executor = await bootSandbox(backend, `${prefix}-iu`, lab.image);
    await sh(exec, 'useradd -m -u 1000 -U -s /bin/sh -G sudo debian && echo kept > /home/debian/notes.txt');
    await provision(exec, options);
    const r = await sh(
      exec,
      'id pixel; getent passwd pixel | cut -d: -f6,7; cat /home/pixel/notes.txt; id debian || echo "no debian"',
    );
    assert.match(
      r.output,
      /uid=1000\(pixel\) gid=1000\(pixel\) groups=1000\(pixel\)\n/,
      'no sudo group in allowlist mode',
    );
    assert.match(r.output, /\/home\/pixel:\/bin\/bash/);
    assert.match(r.output, /\nkept\n/);
    assert.match(r.output, /\nno debian/);
  });

  test('any other user on uid 1000 stops provisioning with a clear message', async () => {
    const exec: Executor = await bootSandbox(backend, `${prefix}-iv`, lab.image);
    await sh(exec, 'useradd -m -u 1000 alice');
    await assert.rejects(provision(exec, options), (err) => {
      assert.ok(err instanceof ProvisionStepError);
      assert.equal(err.step, 'user');
      assert.match(err.message, /uid 1000 is already taken by user alice/);
      return true;
    });
  });
});
