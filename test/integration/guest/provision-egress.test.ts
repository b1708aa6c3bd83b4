// Provisioning never runs without the chosen egress policy (real container, allowlist mode): the policy goes on
// first with the provisioning sources allowed by name; while the tools download, a destination that is neither
// allowed nor a source is refused; a failed step leaves the policy in force with the sources removed (and says
// so); a re-run opens them again for the steps still to do; at the end they are gone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import {
  buildPolicy,
  provision,
  ProvisionStepError,
  showEgress,
  type Executor,
  type ProvisionOptions,
} from '../../../src/guest/index';
import { generateKeyPair } from '../../../src/ssh/index';
import type { Lab } from '../../lab/lab';
import { FAKE_MISE_INSTALLER } from './fake-mise';
import { bootSandbox, fetchFrom, labBackend, removeTestInstances, sh, testPrefix } from './helpers';
import { NET, startInternet, type Internet } from './internet';

describe('egress while provisioning (real container)', { timeout: 300_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-pe`;
  let lab: Lab;
  let backend: IncusBackend;
  let net: Internet;
  let exec: Executor;
  let options: ProvisionOptions;
  const at = (host: string, path = '/') => `http://${host}:${net.port}${path}`;

  before(async () => {
    ({ lab, backend } = await labBackend());
    net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
    // The download mirror: public to the sandbox's rules, not in its allow list.
    net.names.set('mirror.test', [NET.movedV4]);
    for (const path of ['/node/index.json', '/npm/@openai/codex']) net.route(path, '{}');
    exec = await bootSandbox(backend, name, lab.image);
    options = {
      userPublicKeys: [generateKeyPair('provision-egress').publicOpenSsh],
      devtools: true,
      tools: [
        { name: 'node', version: 'lts' },
        { name: 'npm:@openai/codex', version: 'latest' },
      ],
      packages: [],
      sources: {
        miseInstallerUrl: at('mirror.test', '/mise-install.sh'),
        npmRegistry: at('mirror.test', '/npm'),
        nodeMirror: at('mirror.test', '/node'),
      },
      egress: buildPolicy('allowlist', ['allowed.test']),
      timeouts: { mise: 30_000, tools: 30_000 },
    };
  });

  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    await net?.close();
  });

  /** The allowlist policy holds and no provisioning source is open any more. */
  async function assertClosed(where: string) {
    const status = await showEgress(exec);
    assert.equal(status.policy.mode, 'allowlist', where);
    assert.equal(status.enforced, true, `${where}: the rules are loaded`);
    assert.equal(status.provisioningSources, 0, `${where}: no provisioning source is allowed`);
    assert.equal((await sh(exec, 'test -e /etc/pixels/egress-provisioning')).exitCode, 1, where);
    assert.equal((await fetchFrom(exec, at('allowed.test'))).exitCode, 0, `${where}: allowed.test answers`);
    for (const host of ['mirror.test', 'denied.test']) {
      const r = await fetchFrom(exec, at(host));
      assert.equal(r.exitCode, 7, `${where}: ${host} is refused: ${r.output}`);
    }
  }

  test('a failed step leaves the chosen policy in force, the sources removed, and says so', async () => {
    // The installer is not served yet: the mise step fails with curl's 404 from the mirror.
    const err = await provision(exec, options).then(
      () => assert.fail('provisioning should fail while the installer is missing'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProvisionStepError, String(err));
    assert.equal(err.step, 'mise');
    assert.ok(
      err.logTail.some((l) => /404/.test(l)),
      `the mirror was reachable and answered 404: ${err.logTail.join(' | ')}`,
    );
    assert.match(
      err.message,
      /\(the allowlist egress policy is in force; the provisioning sources were removed\)$/,
    );
    await assertClosed('after the failure');
  });

  test('a re-run opens the sources again; while it downloads, nothing else is reachable', async () => {
    // The installer first probes from inside the sandbox (as pixel, like the real downloads), then installs.
    const probe = `#!/bin/sh
for host in mirror.test denied.test allowed.test; do
  curl -sS -o /dev/null --max-time 5 "http://$host:${net.port}/"
  echo "$host $?" >> /tmp/probe-during-provisioning
done
`;
    net.route('/mise-install.sh', probe + FAKE_MISE_INSTALLER.replace('#!/bin/sh\n', ''));
    const outcomes = await provision(exec, options);
    const ran = outcomes.filter((o) => !o.alreadyDone).map((o) => o.id);
    assert.deepEqual(ran, ['egress', 'mise', 'tools', 'close-sources']);
    const probed = await sh(exec, 'cat /tmp/probe-during-provisioning');
    assert.equal(
      probed.output,
      'mirror.test 0\ndenied.test 7\nallowed.test 0',
      'refused during provisioning',
    );
    assert.ok(net.requests.some((r) => r.startsWith(`${NET.movedV4} /npm/@openai/codex`)));
    await assertClosed('after provisioning');
  });

  test('a finished sandbox re-provisioned with nothing to download does not open the sources', async () => {
    const outcomes = await provision(exec, options);
    assert.ok(
      outcomes.every((o) => o.alreadyDone),
      JSON.stringify(outcomes),
    );
    await assertClosed('after a re-run with nothing to do');
  });
});
