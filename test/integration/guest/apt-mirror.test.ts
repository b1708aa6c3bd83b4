// The apt mirror is configurable: provisioning points the sandbox at a local (unsigned, explicitly trusted) mirror
// served from this machine, installs a missing package from it, and in allowlist mode the pixel user can still
// install packages from that mirror through the one sudo command it keeps. A sandbox without tmux gets it from the
// mirror when a persistent session needs it (the editor's on-demand install), and the session then runs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import {
  buildPolicy,
  envFileContent,
  INSTALL_TMUX_SCRIPT,
  LIST_SESSIONS_SCRIPT,
  parseSessionList,
  provision,
  startSessionScript,
  type Executor,
} from '../../../src/guest/index';
import { shq } from '../../../src/guest/shell';
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
    exec = await bootSandbox(backend, name, lab.image);
    // The mirror's "tmux" package carries the lab image's own tmux binary (its libraries stay installed when the
    // image's package is removed), so the on-demand install below installs a tmux that really runs.
    const tmux = await sh(exec, 'base64 -w0 "$(command -v tmux)"');
    assert.equal(tmux.exitCode, 0, 'the lab image has tmux');
    serveFakeAptRepo(net, '/debian', 'bookworm', [
      'pixels-hello',
      'pixels-extra',
      {
        name: 'tmux',
        files: { '/usr/bin/tmux': { content: Buffer.from(tmux.output, 'base64'), mode: 0o755 } },
      },
    ]);
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

  test('a sandbox without tmux: the on-demand install gets it from the mirror, then a session runs', async () => {
    assert.equal((await sh(exec, 'dpkg -r tmux && ! command -v tmux')).exitCode, 0, 'tmux removed');
    const listed = await sh(exec, LIST_SESSIONS_SCRIPT, 'pixel');
    assert.equal(parseSessionList(listed.output).tmux, false, 'the listing says tmux is missing');
    const install = await sh(exec, INSTALL_TMUX_SCRIPT);
    assert.equal(install.exitCode, 0, install.output);
    assert.match(install.output, /installing tmux/);
    assert.ok(
      net.requests.some((q) => q.endsWith('/debian/pool/main/tmux_1.0_all.deb')),
      'from the mirror',
    );
    assert.match((await sh(exec, "dpkg-query -W -f='${Version}' tmux")).output, /^1\.0$/);
    // The start script reads the session's variables on stdin: none here.
    const script = startSessionScript({ name: 'after-install', command: 'sleep 300', kind: 'agent' });
    const start = await sh(
      exec,
      `printf %s ${shq(envFileContent({}))} | runuser -u pixel -- bash -c ${shq(script)}`,
    );
    assert.equal(start.exitCode, 0, start.output);
    const after = parseSessionList((await sh(exec, LIST_SESSIONS_SCRIPT, 'pixel')).output);
    assert.equal(after.tmux, true);
    assert.deepEqual(
      after.sessions.map((x) => [x.name, x.running]),
      [['after-install', true]],
    );
    assert.match((await sh(exec, INSTALL_TMUX_SCRIPT)).output, /already installed/);
  });
});
