// Provisioning on a real Incus container, over real SSH (pinned host key, root login with the user's key),
// with fake installers served from this machine: the steps and their events, log lines streamed while a step
// runs, a failing step reported with its log tail, a timeout, resume after a failure, no re-provisioning of a
// clone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import {
  backendExecutor,
  buildPolicy,
  provision,
  ProvisionStepError,
  showEgress,
  sshExecutor,
  type Executor,
  type ProvisionEvent,
  type ProvisionOptions,
} from '../../../src/guest/index';
import {
  generateHostKey,
  generateKeyPair,
  prepareSandboxAccess,
  SshPool,
  waitForSsh,
  type SshTarget,
} from '../../../src/ssh/index';
import type { Lab } from '../../lab/lab';
import { FAKE_MISE_INSTALLER } from './fake-mise';
import {
  fetchFrom,
  labBackend,
  removeTestInstances,
  sh,
  testPrefix,
  useTestResolver,
  waitBooted,
  waitForAddresses,
  waitForIpv4,
} from './helpers';
import { startInternet, type Internet } from './internet';

describe('provisioning on real containers', { timeout: 600_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-pv`;
  const user = generateKeyPair('provision-test');
  const otherMachine = generateKeyPair('other-machine');
  const hostKey = generateHostKey();
  let lab: Lab;
  let backend: IncusBackend;
  let net: Internet;
  let pool: SshPool;
  let exec: Executor;
  let target: SshTarget;
  let options: ProvisionOptions;
  const base = () => `http://allowed.test:${net.port}`;

  before(async () => {
    ({ lab, backend } = await labBackend());
    net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
    pool = new SshPool();
    await backend.create({ name, image: lab.image, start: false });
    // Another machine's key is already there: provisioning must append, never overwrite.
    await backend.writeFile(
      name,
      '/root/.ssh/authorized_keys',
      Buffer.from(`${otherMachine.publicOpenSsh}\n`),
      {
        mode: 0o600,
      },
    );
    await prepareSandboxAccess(backend, name, {
      userPublicKey: user.publicOpenSsh,
      hostKey,
      pixelUser: false,
    });
    await backend.start(name);
    const sandbox = await waitForIpv4(backend, name);
    target = {
      host: sandbox.ipv4!,
      username: 'root',
      privateKey: user.privateOpenSsh,
      hostKey: hostKey.publicOpenSsh,
    };
    await waitForSsh(target, 60_000);
    exec = sshExecutor(pool, target);
    await waitBooted(exec);
    await waitForAddresses(exec);
    await useTestResolver(backend, name);
    options = {
      userPublicKeys: [user.publicOpenSsh],
      hostPublicKey: hostKey.publicOpenSsh,
      environment: { PIXELS_TEST_VAR: 'from [env]' },
      acceptEnv: ['ANTHROPIC_API_KEY'],
      devtools: true,
      packages: [],
      sources: {
        miseInstallerUrl: `${base()}/mise-install.sh`,
        npmRegistry: `${base()}/npm`,
        nodeMirror: `${base()}/node`,
      },
      setupScript: { content: 'echo setup-first\nsleep 1.5\necho setup-second\nid -un > ~/setup-ran-as\n' },
      egress: buildPolicy('agent', ['allowed.test']),
      timeouts: { mise: 30_000, tools: 30_000 },
    };
    for (const path of [
      '/node/index.json',
      '/npm/@anthropic-ai/claude-code',
      '/npm/@openai/codex',
      '/npm/opencode-ai',
    ])
      net.route(path, '{}');
  });

  after(async () => {
    pool?.dispose();
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    await net?.close();
  });

  function recorder() {
    const events: Array<ProvisionEvent & { at: number }> = [];
    return { events, onEvent: (e: ProvisionEvent) => events.push({ ...e, at: Date.now() }) };
  }
  const states = (events: ProvisionEvent[], id: string) =>
    events.filter((e) => e.type === 'step' && e.id === id).map((e) => (e.type === 'step' ? e.state : ''));

  test('a missing installer fails its step with the log tail, and nothing after it runs', async () => {
    const { events, onEvent } = recorder();
    const err = await provision(exec, options, onEvent).then(
      () => assert.fail('provisioning should fail while the installer is missing'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProvisionStepError, String(err));
    assert.equal(err.step, 'mise');
    assert.equal(err.timedOut, false);
    assert.ok(
      err.logTail.some((l) => /404/.test(l)),
      `the tail shows curl's 404: ${err.logTail.join(' | ')}`,
    );
    assert.match(err.message, /Install mise/);
    assert.deepEqual(states(events, 'user'), ['pending', 'running', 'done']);
    assert.deepEqual(states(events, 'mise'), ['pending', 'running', 'failed']);
    assert.deepEqual(states(events, 'egress'), ['pending', 'running', 'done'], 'the policy went on first');
    assert.deepEqual(states(events, 'tools'), ['pending'], 'no step after the failing one ran');
    assert.deepEqual(states(events, 'close-sources'), ['pending']);
    assert.match(err.message, /the agent egress policy is in force; the provisioning sources were removed/);
    assert.ok(
      events.some(
        (e) => e.type === 'log' && e.id === 'mise' && /downloading the mise installer/.test(e.line),
      ),
    );
  });

  test('re-running continues after the failure and streams each step', async () => {
    net.route('/mise-install.sh', FAKE_MISE_INSTALLER);
    const { events, onEvent } = recorder();
    const outcomes = await provision(exec, options, onEvent);
    const done = Object.fromEntries(outcomes.map((o) => [o.id, o.alreadyDone]));
    assert.deepEqual(done, {
      egress: false, // the failure closed the provisioning sources: they open again for the downloads
      user: true,
      packages: true,
      ssh: true,
      env: true,
      mise: false,
      tools: false,
      'close-sources': false,
      setup: false,
    });
    const plan = events.find((e) => e.type === 'plan');
    assert.deepEqual(plan?.type === 'plan' && plan.steps.map((s) => s.id), [
      'egress',
      'user',
      'packages',
      'ssh',
      'env',
      'mise',
      'tools',
      'close-sources',
      'setup',
    ]);
    // Streamed: the setup step's first line arrived well before the step ended (it sleeps 1.5 s in between).
    const first = events.find((e) => e.type === 'log' && e.id === 'setup' && e.line === 'setup-first');
    const end = events.find((e) => e.type === 'step' && e.id === 'setup' && e.state === 'done');
    assert.ok(first && end, 'setup log and done events');
    assert.ok(end.at - first.at >= 1000, `log line streamed ${end.at - first.at} ms before the step ended`);
    // The fake mise fetched every tool from the configured mirrors.
    for (const path of [
      '/mise-install.sh',
      '/node/index.json',
      '/npm/@anthropic-ai/claude-code',
      '/npm/@openai/codex',
    ])
      assert.ok(
        net.requests.some((r) => r.endsWith(` ${path}`)),
        `${path} was requested: ${net.requests.join(', ')}`,
      );
  });

  test('the sandbox has what provisioning promised', async () => {
    const r = await sh(
      exec,
      [
        'id pixel',
        'getent passwd pixel | cut -d: -f6,7',
        'cat /root/.ssh/authorized_keys',
        'cat /home/pixel/.ssh/authorized_keys',
        'grep PIXELS_TEST_VAR /etc/environment',
        'cat /etc/ssh/sshd_config.d/pixels.conf',
        'cat /home/pixel/setup-ran-as',
        'cat /home/pixel/.npmrc',
        'runuser -l pixel -c "mise ls --current"',
        'ls /var/lib/pixels/provision/*.done | wc -l',
      ].join(' && '),
    );
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /uid=1000\(pixel\) gid=1000\(pixel\)/);
    assert.match(r.output, /\/home\/pixel:\/bin\/bash/);
    assert.ok(r.output.includes(otherMachine.publicOpenSsh), "the other machine's key is still authorised");
    assert.ok(r.output.includes(user.publicOpenSsh));
    assert.match(r.output, /PIXELS_TEST_VAR="from \[env\]"/);
    assert.match(r.output, /AcceptEnv ANTHROPIC_API_KEY/);
    assert.match(r.output, /HostKey \/etc\/ssh\/ssh_host_ed25519_key/);
    assert.match(r.output, /\npixel\n/, 'the setup script ran as pixel');
    assert.match(r.output, /registry=http:\/\/allowed\.test:\d+\/npm/);
    assert.match(r.output, /npm:@openai\/codex latest/);
    assert.match(r.output, /\n9$/, 'nine markers');
    // The environment reaches a login session, and pixel logs in over SSH with the pinned host key.
    const pixel = await pool.exec({ ...target, username: 'pixel' }, 'echo "$PIXELS_TEST_VAR"; id -un');
    assert.equal(pixel.exitCode, 0);
    assert.equal(pixel.stdout.toString().trim(), 'from [env]\npixel');
    // The egress policy went on first, with the download locations allowed until the downloads were done.
    assert.equal((await showEgress(exec)).policy.mode, 'agent');
    assert.equal((await fetchFrom(exec, `${base()}/`)).exitCode, 0);
    assert.equal((await fetchFrom(exec, `http://denied.test:${net.port}/`)).exitCode, 7);
  });

  test('a second run finds every step done and runs nothing', async () => {
    const { events, onEvent } = recorder();
    const before = net.requests.length;
    const outcomes = await provision(exec, options, onEvent);
    assert.ok(outcomes.every((o) => o.alreadyDone));
    assert.equal(events.filter((e) => e.type === 'step' && e.state === 'running').length, 0);
    assert.equal(net.requests.length, before, 'nothing was downloaded again');
  });

  test('a failing setup script ends provisioning with its log tail; fixing it resumes there', async () => {
    const failing = {
      ...options,
      setupScript: { content: 'echo working on it\necho "something broke" >&2\nexit 3\n' },
    };
    const err = await provision(exec, failing).then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProvisionStepError);
    assert.equal(err.step, 'setup');
    assert.equal(err.exitCode, 3);
    assert.deepEqual(err.logTail.slice(0, 2), ['working on it', 'something broke']);
    assert.match(err.message, /Run setup script" failed \(exit code 3\)/);
    const fixed = { ...options, setupScript: { content: 'echo fixed > ~/fixed\n' } };
    const outcomes = await provision(exec, fixed);
    assert.deepEqual(
      outcomes.filter((o) => !o.alreadyDone).map((o) => o.id),
      ['setup'],
    );
  });

  test('a step that hangs is stopped by its timeout and reported as timed out', async () => {
    const hanging = {
      ...options,
      setupScript: { content: 'echo about to hang\nsleep 120\n' },
      timeouts: { setup: 2000 },
    };
    const started = Date.now();
    const err = await provision(exec, hanging).then(
      () => assert.fail('should time out'),
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    assert.ok(err instanceof ProvisionStepError);
    assert.equal(err.step, 'setup');
    assert.equal(err.timedOut, true);
    assert.equal(err.kind, 'timeout');
    assert.ok(err.logTail.includes('about to hang'), err.logTail.join(' | '));
    assert.ok(took < 15_000, `stopped after ${took} ms`);
    // Nothing is left running in the sandbox.
    const r = await sh(exec, 'pgrep -f "sleep 120" || echo none');
    assert.equal(r.output, 'none');
  });

  test('a clone of a provisioned sandbox is not provisioned again (only its new host key is checked)', async () => {
    const fixed = { ...options, setupScript: { content: 'echo fixed > ~/fixed\n' } };
    await provision(exec, fixed); // the timeout test left the setup step undone
    const cloneName = `${prefix}-pvc`;
    await backend.clone({ sandbox: name }, cloneName);
    // A clone gets its own identity: a new pinned host key, pushed the same way as for a new sandbox.
    const cloneKey = generateHostKey();
    await prepareSandboxAccess(backend, cloneName, { userPublicKey: user.publicOpenSsh, hostKey: cloneKey });
    const cloneExec = backendExecutor(backend, cloneName);
    await waitBooted(cloneExec);
    const { events, onEvent } = recorder();
    const outcomes = await provision(cloneExec, { ...fixed, hostPublicKey: cloneKey.publicOpenSsh }, onEvent);
    assert.deepEqual(
      outcomes.filter((o) => !o.alreadyDone).map((o) => o.id),
      ['ssh'],
    );
    assert.equal(events.filter((e) => e.type === 'step' && e.state === 'running').length, 1);
    const clone = await waitForIpv4(backend, cloneName);
    const pixel = await pool.exec(
      {
        host: clone.ipv4!,
        username: 'pixel',
        privateKey: user.privateOpenSsh,
        hostKey: cloneKey.publicOpenSsh,
      },
      'cat ~/fixed',
    );
    assert.equal(pixel.stdout.toString().trim(), 'fixed');
  });
});
