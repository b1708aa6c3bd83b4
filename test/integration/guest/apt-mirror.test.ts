// The apt mirror is configurable: provisioning points the sandbox at a local (unsigned, explicitly trusted) mirror
// served from this machine, installs a missing package from it, and in allowlist mode the pixel user can still
// install packages from that mirror through the one sudo command it keeps.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { buildPolicy, provision, type Executor } from '../../../src/guest/index';
import { generateKeyPair } from '../../../src/ssh/index';
import type { Lab } from '../../lab/lab';
import { serveFakeAptRepo } from './fake-apt';
import { bootSandbox, fetchFrom, labBackend, removeTestInstances, sh, testPrefix } from './helpers';
import { startInternet, type Internet } from './internet';

describe('apt mirror on a real container', { timeout: 300_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-apt`;
  let lab: Lab;
  let backend: IncusBackend;
  let net: Internet;
  let exec: Executor;

  before(async () => {
    ({ lab, backend } = await labBackend());
    net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
    serveFakeAptRepo(net, '/debian', 'bookworm', ['pixels-hello', 'pixels-extra']);
    exec = await bootSandbox(backend, name, lab.image);
  });

  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    await net?.close();
  });

  test('provisioning installs missing packages from the configured mirror', async () => {
    await provision(exec, {
      userPublicKeys: [generateKeyPair('apt-test').publicOpenSsh],
      devtools: false,
      packages: ['pixels-hello'],
      sources: { aptMirror: `http://allowed.test:${net.port}/debian`, aptTrusted: true },
      egress: buildPolicy('allowlist', ['allowed.test']),
    });
    const r = await sh(
      exec,
      'pixels-hello && cat /etc/apt/sources.list.d/pixels-mirror.list && ls /etc/apt/',
    );
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /pixels-hello 1\.0 works/);
    assert.match(
      r.output,
      new RegExp(`deb \\[trusted=yes\\] http://allowed\\.test:${net.port}/debian bookworm main`),
    );
    assert.match(r.output, /sources\.list\.pixels-disabled/, "the image's own sources were set aside");
    assert.ok(net.requests.some((q) => q.endsWith('/debian/pool/main/pixels-hello_1.0_all.deb')));
  });

  test('in allowlist mode pixel installs from the mirror with sudo pixels-apt, and nothing else', async () => {
    const install = await sh(
      exec,
      'sudo -n pixels-apt update && sudo -n pixels-apt install -y pixels-extra',
      'pixel',
    );
    assert.equal(install.exitCode, 0, install.output);
    assert.match((await sh(exec, 'pixels-extra', 'pixel')).output, /pixels-extra 1\.0 works/);
    assert.equal((await fetchFrom(exec, `http://denied.test:${net.port}/`)).exitCode, 7);
    assert.notEqual((await sh(exec, 'sudo -n apt-get install -y pixels-extra', 'pixel')).exitCode, 0);
  });
});
