// The sandbox workflows (src/workflows) driven without an editor against the real Incus lab, as the LM tools and
// the MCP server run them: create → provisioning (fake installers on the stand-in internet) → egress enforced →
// SSH with the pinned host key; clone of a checkpoint → its own identity and host key, only provisioning's SSH step again, egress
// re-checked; restore → the checkpoint's policy re-checked; allow / deny enforced inside; a failed provisioning
// step keeps the sandbox and a retry resumes there; a create cancelled halfway leaves nothing behind; destroy
// removes the sandbox with its pinned key and remembered mode. Fails loudly when the lab is not up.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { CancelledError, NotFoundError, ValidationError } from '../../../src/core/errors';
import { backendExecutor, setEgressMode, showEgress } from '../../../src/guest/index';
import { createCheckpoint } from '../../../src/workflows/checkpoints';
import { cloneSandbox } from '../../../src/workflows/clone';
import { createSandbox, type CreateAnswers } from '../../../src/workflows/create';
import { destroySandbox } from '../../../src/workflows/destroy';
import { allowEgress, denyEgress } from '../../../src/workflows/egressPolicy';
import { plainRunPhase } from '../../../src/workflows/progress';
import { ProvisioningFailed, provisionSandbox } from '../../../src/workflows/provision';
import type { ProvisionInputs } from '../../../src/workflows/provisioning';
import { changeExecutor } from '../../../src/workflows/egressTracker';
import { restoreCheckpoint } from '../../../src/workflows/restore';
import type { Lab } from '../../lab/lab';
import { FAKE_MISE_INSTALLER } from '../guest/fake-mise';
import { fetchFrom, sh } from '../guest/helpers';
import { NET, startInternet, type Internet } from '../guest/internet';
import { labBackend, removeTestInstances, testPrefix } from '../incus/helpers';
import { workflowHarness, type Harness } from './context';

describe('sandbox workflows without an editor (real Incus lab)', { timeout: 300_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-wf`;
  const cloneName = `${prefix}-wfc`;
  let lab: Lab;
  let backend: IncusBackend;
  let net: Internet;
  let h: Harness;
  let inputs: ProvisionInputs;
  const base = () => `http://${NET.allowedV4}:${net.port}`;

  before(async () => {
    ({ lab, backend } = await labBackend());
    net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
    net.route('/mise-install.sh', FAKE_MISE_INSTALLER);
    for (const path of ['/node/index.json', '/npm/@openai/codex']) net.route(path, '{}');
    inputs = {
      // The lab has no internet: every download location is the stand-in listener on the bridge.
      tools: [
        { name: 'node', version: 'lts' },
        { name: 'npm:@openai/codex', version: 'latest' },
      ],
      packages: [],
      timeouts: { mise: 30_000, tools: 30_000 },
      sources: {
        miseInstallerUrl: `${base()}/mise-install.sh`,
        npmRegistry: `${base()}/npm`,
        nodeMirror: `${base()}/node`,
      },
      agentExtra: [],
      allow: [],
      imageEnv: {},
    };
    h = workflowHarness(backend, lab.socket, inputs);
  });

  after(async () => {
    h?.dispose();
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    await net?.close();
  });

  const answers = (over: Partial<CreateAnswers>): CreateAnswers => ({
    name,
    image: lab.image,
    cpu: '1',
    memoryMiB: 512,
    egress: 'agent',
    provision: true,
    ...over,
  });

  test('create → provision → egress → SSH: each phase reported, the policy enforced, SSH with the pinned key', async () => {
    const created: string[] = [];
    const sandbox = await createSandbox(h.ctx, answers({}), { onCreated: (n) => created.push(n) });
    assert.equal(sandbox.status, 'running');
    assert.deepEqual(created, [name]);
    const phases = [...new Set(h.events.map((e) => e.phase))];
    assert.deepEqual(phases, [`Creating sandbox "${name}"`, `Provisioning ${name}`]);
    const steps = h.events.filter((e) => e.message).map((e) => e.message);
    for (const step of ['creating the container', 'installing the SSH host key and your key', 'connecting'])
      assert.ok(steps.includes(step), `step "${step}" reported: ${steps.join(' | ')}`);
    assert.ok(
      h.events.some((e) => e.phase === `Provisioning ${name}` && e.percent === 100),
      'provisioning reached 100 %',
    );
    assert.ok(h.changes() >= 2, 'the view was told twice (created, provisioned)');
    assert.equal(h.ctx.egress.get('lab', name), 'agent');
    assert.equal(h.provisioning.provisionedWith('lab', name), 'agent');
    assert.deepEqual(h.provisioning.run('lab', name)?.failed, undefined);

    // SSH: the host key pinned under the alias answers, and our key logs in as root.
    const pinned = await h.ssh.hostKey('lab', name);
    assert.ok(pinned, 'the host key is pinned');
    const target = await h.ssh.readyTarget(backend, 'lab', name);
    const r = await (await h.ssh.pool()).exec(target, 'id -un');
    assert.equal(r.stdout.toString().trim(), 'root');

    // Egress: "agent" holds inside (read with the code under test and probed with curl); the sources are closed.
    const status = await showEgress(backendExecutor(backend, name));
    assert.equal(status.policy.mode, 'agent');
    assert.equal(status.enforced, true);
    assert.notEqual((await fetchFrom(backendExecutor(backend, name), `${base()}/`)).exitCode, 0);
    assert.deepEqual(h.notices, []);
  });

  test('clone of a checkpoint → its own identity and host key, only the SSH step again, egress re-checked', async () => {
    // From a checkpoint, as create-from-base does.
    await createCheckpoint(h.ctx, name, 'provisioned');
    const before = h.events.length;
    const clone = await cloneSandbox(h.ctx, { source: name, checkpoint: 'provisioned', name: cloneName });
    assert.equal(clone.status, 'running');
    const sourceKey = await h.ssh.hostKey('lab', name);
    const cloneKey = await h.ssh.hostKey('lab', cloneName);
    assert.ok(cloneKey, "the clone's host key is pinned");
    assert.notEqual(cloneKey, sourceKey, 'a clone does not share the host key of its source');
    const source = backendExecutor(backend, name);
    const copy = backendExecutor(backend, cloneName);
    for (const file of ['/etc/machine-id', '/etc/hostname'])
      assert.notEqual(
        (await sh(copy, `cat ${file}`)).output,
        (await sh(source, `cat ${file}`)).output,
        `${file} differs`,
      );
    const run = h.provisioning.run('lab', cloneName);
    assert.deepEqual(
      run?.steps.filter((s) => !s.alreadyDone).map((s) => s.id),
      ['ssh'],
      'only the host-key step ran again',
    );
    assert.ok(h.events.slice(before).some((e) => e.phase === `Cloning "${name}" to "${cloneName}"`));
    // Re-checked: the tracker holds what the clone says, and it is the source's mode.
    assert.equal(h.ctx.egress.get('lab', cloneName), 'agent');
    assert.equal((await showEgress(copy)).enforced, true);
    const target = await h.ssh.readyTarget(backend, 'lab', cloneName);
    assert.equal(
      (await (await h.ssh.pool()).exec(target, 'true')).exitCode,
      0,
      'SSH to the clone with its key',
    );
    assert.deepEqual(h.notices, [], 'the policy holds in the clone');
  });

  test("restore → the checkpoint's policy is back and re-checked", async () => {
    await createCheckpoint(h.ctx, name, 'agent-state');
    // Opened after the checkpoint, from inside, as a person in the sandbox could.
    const exec = await changeExecutor(backend, 'lab', name, h.ssh);
    await setEgressMode(exec, 'unrestricted');
    assert.equal((await showEgress(exec)).policy.mode, 'unrestricted');
    const status = await restoreCheckpoint(h.ctx, { name, label: 'agent-state' });
    assert.ok(status, 'the restored sandbox was re-checked');
    assert.equal(status.policy.mode, 'agent');
    assert.equal(status.enforced, true);
    assert.equal(h.ctx.egress.get('lab', name), 'agent', 'the remembered mode follows the restored state');
    assert.notEqual((await fetchFrom(backendExecutor(backend, name), `${base()}/`)).exitCode, 0);
  });

  test('egress: allow an address, deny it again — enforced inside, the mode stays', async () => {
    const exec = backendExecutor(backend, name);
    const allowed = await allowEgress(h.ctx, name, ` ${NET.allowedV4} `);
    assert.deepEqual(allowed.policy.allow, [NET.allowedV4]);
    assert.equal(allowed.enforced, true);
    assert.equal((await fetchFrom(exec, `${base()}/`)).exitCode, 0, 'the allowed address answers');
    const denied = await denyEgress(h.ctx, name, NET.allowedV4);
    assert.deepEqual(denied.policy.allow, []);
    assert.notEqual((await fetchFrom(exec, `${base()}/`)).exitCode, 0, 'refused again');
    assert.equal(h.ctx.egress.get('lab', name), 'agent');
    await assert.rejects(allowEgress(h.ctx, name, 'http://example.com/'), ValidationError);
    const phases = h.events.map((e) => e.phase);
    assert.ok(phases.includes(`Allowing ${NET.allowedV4} in "${name}"`));
    assert.ok(phases.includes(`Denying ${NET.allowedV4} in "${name}"`));
  });

  test('a failing provisioning step keeps the sandbox; provisioning again resumes at that step', async () => {
    const failing = `${prefix}-wfp`;
    const installer = inputs.sources.miseInstallerUrl;
    inputs.sources.miseInstallerUrl = `${base()}/missing-installer.sh`;
    let failure: unknown;
    try {
      await createSandbox(h.ctx, answers({ name: failing, egress: 'unrestricted' }));
    } catch (err) {
      failure = err;
    } finally {
      inputs.sources.miseInstallerUrl = installer;
    }
    assert.ok(failure instanceof ProvisioningFailed, String(failure));
    assert.equal(failure.step, 'mise');
    assert.match(failure.message, /^Provisioning ".+" stopped at step "Install mise"/);
    assert.equal((await backend.get(failing)).status, 'running', 'the sandbox stays for the retry');
    assert.equal(h.provisioning.run('lab', failing)?.failed, 'Install mise');
    const outcomes = await provisionSandbox(h.ctx, failing);
    const ranAgain = outcomes.filter((o) => !o.alreadyDone).map((o) => o.id);
    assert.equal(ranAgain[0], 'mise', `resumed at the failed step: ${ranAgain.join(', ')}`);
    assert.ok(
      outcomes.some((o) => o.alreadyDone),
      'the steps before it were not run again',
    );
    await destroySandbox(h.ctx, { name: failing });
  });

  test('a create cancelled after the container exists leaves nothing behind', async () => {
    const halfway = `${prefix}-wfx`;
    const abort = new AbortController();
    const ctx = {
      ...h.ctx,
      run: plainRunPhase(abort.signal, (e) => {
        h.events.push(e);
        // The container exists by the time it is started: cancel right there.
        if (e.message === 'starting') abort.abort();
      }),
    };
    await assert.rejects(
      createSandbox(ctx, answers({ name: halfway, provision: false, egress: 'agent' })),
      CancelledError,
    );
    const steps = h.events.filter((e) => e.phase === `Creating sandbox "${halfway}"`).map((e) => e.message);
    // Our steps in order (the server job's own progress lines come in between).
    const order = ['creating the container', 'starting', 'cleaning up'].map((m) => steps.indexOf(m));
    assert.ok(order[0] >= 0 && order[0] < order[1] && order[1] < order[2], `steps: ${steps.join(' | ')}`);
    assert.ok(h.logLines.includes(`warn create ${halfway} failed; destroying the partly created sandbox`));
    await assert.rejects(backend.get(halfway), NotFoundError, 'the container was removed');
    assert.equal(await h.ssh.hostKey('lab', halfway), undefined);
    assert.equal(h.ctx.egress.get('lab', halfway), undefined);
  });

  test('destroy → the sandbox, its pinned key and its remembered mode go', async () => {
    await destroySandbox(h.ctx, { name: cloneName });
    await assert.rejects(backend.get(cloneName), NotFoundError);
    assert.equal(await h.ssh.hostKey('lab', cloneName), undefined);
    assert.equal(h.ctx.egress.get('lab', cloneName), undefined);
    assert.equal(h.provisioning.provisionedWith('lab', cloneName), undefined);
    const knownHosts = join(h.sshDir, 'known_hosts');
    assert.ok(existsSync(knownHosts));
    assert.ok(readFileSync(knownHosts, 'utf8').includes(h.ssh.alias('lab', name)), "the source's key stays");
    assert.ok(
      h.logLines.some((l) => l.includes(`destroyed sandbox ${cloneName} on Incus lab (0 checkpoints)`)),
    );
  });
});
