// Egress policy on a real Incus container: listeners on this machine stand in for the internet. Allowed ones
// answer, others are refused, private ranges are refused unless a specific address is allowed, IPv6 alike;
// allow/deny act at once; the rules hold after reboot, restore of an older checkpoint and clone; pixel cannot
// remove them.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import {
  allowEgress,
  applyEgress,
  backendExecutor,
  buildPolicy,
  denyEgress,
  provision,
  recheckEgress,
  setEgressMode,
  showEgress,
  type Executor,
} from '../../../src/guest/index';
import { generateKeyPair } from '../../../src/ssh/index';
import { EGRESS_MACHINERY_MARKER, egressMachineryHash } from '../../../src/guest/egress/guest-files';
import { withAllowed } from '../../../src/guest/egress/policy';
import { GUEST_PATHS } from '../../../src/guest/paths';
import type { Lab } from '../../lab/lab';
import {
  bootSandbox,
  dnsQueryFromPort,
  fetchFrom,
  labBackend,
  removeTestInstances,
  sh,
  testPrefix,
  useTestResolver,
  waitBooted,
  waitForAddresses,
} from './helpers';
import { NET, startInternet, type Internet } from './internet';

describe('egress on real containers', { timeout: 600_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-eg`;
  let lab: Lab;
  let backend: IncusBackend;
  let net: Internet;
  let exec: Executor;
  let url: (host: string) => string;

  before(async () => {
    ({ lab, backend } = await labBackend());
    net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
    url = (host) => `http://${host.includes(':') ? `[${host}]` : host}:${net.port}/`;
    exec = await bootSandbox(backend, name, lab.image);
    // The real provisioning path, without the dev tools (no internet here): user, ssh, env, egress.
    await provision(exec, {
      userPublicKeys: [generateKeyPair('egress-test').publicOpenSsh],
      devtools: false,
      packages: [],
      egress: buildPolicy('agent', ['allowed.test']),
    });
  });

  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    await net?.close();
  });

  /**
   * Stops the periodic refresh (and a run of it under way) for a test that switches resolvers; afterwards the
   * sandbox is back on the test resolver, refreshed, with the timer running.
   */
  async function holdRefreshTimer(t: TestContext): Promise<void> {
    await sh(exec, 'systemctl stop pixels-egress-refresh.timer pixels-egress-refresh.service');
    t.after(async () => {
      await useTestResolver(backend, name, NET.dnsV4);
      await sh(exec, 'pixels-egress refresh');
      await sh(exec, 'systemctl start pixels-egress-refresh.timer');
    });
  }

  /** The expectations that must hold whenever the agent policy with allowed.test is in force. */
  async function assertAgentPolicyHolds(x: Executor, where: string) {
    const ok4 = await fetchFrom(x, url('allowed.test'), 4);
    assert.equal(ok4.exitCode, 0, `${where}: allowed.test over IPv4 should answer: ${ok4.output}`);
    assert.match(ok4.output, new RegExp(`hello from ${NET.allowedV4.replace(/\./g, '\\.')}`));
    const ok6 = await fetchFrom(x, url('allowed.test'), 6);
    assert.equal(ok6.exitCode, 0, `${where}: allowed.test over IPv6 should answer: ${ok6.output}`);
    assert.match(ok6.output, /hello from 2001:db8:77::10/);
    for (const [target, family] of [
      ['denied.test', 4],
      ['denied.test', 6],
      [NET.deniedV4, 4],
      [NET.deniedV6, 6],
    ] as const) {
      const r = await fetchFrom(x, url(target), family);
      assert.equal(
        r.exitCode,
        7,
        `${where}: ${target} (IPv${family}) should be refused, got ${r.exitCode}: ${r.output}`,
      );
    }
    for (const [target, family] of [
      ['private.test', 4],
      ['private.test', 6],
      [net.privateV4, 4],
      [net.privateV6, 6],
    ] as const) {
      const r = await fetchFrom(x, url(target), family);
      assert.equal(
        r.exitCode,
        7,
        `${where}: private ${target} (IPv${family}) should be refused: ${r.output}`,
      );
    }
  }

  test('agent mode: allowed answers, others and private ranges are refused, IPv4 and IPv6', async () => {
    await assertAgentPolicyHolds(exec, 'after provisioning');
    const status = await showEgress(exec);
    assert.equal(status.policy.mode, 'agent', 'network show reports agent, not allowlist');
    assert.ok(status.enforced);
    assert.ok(status.effective.includes('allowed.test'));
    assert.ok(status.effective.includes('api.anthropic.com'), 'the preset is part of the list');
    assert.ok(status.resolvedAddresses >= 2);
  });

  test('allow and deny take effect at once and are kept in the sandbox', async () => {
    let status = await allowEgress(exec, 'denied.test');
    assert.equal(status.policy.mode, 'agent');
    assert.deepEqual(status.policy.allow, ['allowed.test', 'denied.test']);
    assert.equal((await fetchFrom(exec, url('denied.test'), 4)).exitCode, 0);
    assert.equal((await fetchFrom(exec, url('denied.test'), 6)).exitCode, 0);
    status = await denyEgress(exec, 'denied.test');
    assert.deepEqual(status.policy.allow, ['allowed.test']);
    assert.equal((await fetchFrom(exec, url('denied.test'), 4)).exitCode, 7);
    assert.equal((await fetchFrom(exec, url('denied.test'), 6)).exitCode, 7);
    // A runtime addition survives a fresh read (pixels lost these on the next `network set`).
    await allowEgress(exec, NET.deniedV4);
    assert.ok((await showEgress(exec)).policy.allow.includes(NET.deniedV4));
    assert.equal((await fetchFrom(exec, url(NET.deniedV4), 4)).exitCode, 0);
    await denyEgress(exec, NET.deniedV4);
    assert.equal((await fetchFrom(exec, url(NET.deniedV4), 4)).exitCode, 7);
  });

  test('a private address is reachable only when that specific address is allowed', async () => {
    await allowEgress(exec, net.privateV4);
    await allowEgress(exec, net.privateV6);
    const r4 = await fetchFrom(exec, url(net.privateV4), 4);
    assert.equal(r4.exitCode, 0, r4.output);
    const r6 = await fetchFrom(exec, url(net.privateV6), 6);
    assert.equal(r6.exitCode, 0, r6.output);
    await denyEgress(exec, net.privateV4);
    await denyEgress(exec, net.privateV6);
    assert.equal((await fetchFrom(exec, url(net.privateV4), 4)).exitCode, 7);
    assert.equal((await fetchFrom(exec, url(net.privateV6), 6)).exitCode, 7);
  });

  test('DNS goes only to the configured resolver', async (t) => {
    assert.equal((await sh(exec, 'getent hosts allowed.test')).exitCode, 0);
    // The periodic refresh re-reads resolv.conf; keep it out of the way while this test switches servers:
    // the timer, and a run of it that may be under way (it would refill the servers when it ends).
    await sh(exec, 'systemctl stop pixels-egress-refresh.timer pixels-egress-refresh.service');
    const original = (await showEgress(exec)).policy;
    // Whatever happens below, later tests start from the original resolver and policy.
    t.after(async () => {
      await useTestResolver(backend, name, NET.dnsV4);
      await applyEgress(exec, original);
      await sh(exec, 'systemctl start pixels-egress-refresh.timer');
    });
    // Another server that knows the same names: the query never reaches it.
    await useTestResolver(backend, name, NET.otherDnsV4);
    const other = await sh(exec, 'getent hosts allowed.test');
    assert.notEqual(other.exitCode, 0, `a lookup through ${NET.otherDnsV4} should fail: ${other.output}`);
    // The next refresh follows the sandbox's resolv.conf (DHCP may set it after boot), and only that server.
    await sh(exec, 'pixels-egress refresh');
    assert.equal(
      (await sh(exec, 'getent hosts allowed.test')).exitCode,
      0,
      'the new resolver is allowed after refresh',
    );
    await useTestResolver(backend, name, NET.dnsV4);
    const old = await sh(exec, 'getent hosts allowed.test');
    if (old.exitCode === 0)
      // What let the lookup through, for the log.
      assert.fail(
        `the old resolver is not allowed, yet the lookup answered (${old.output}):\n${
          (
            await sh(
              exec,
              'cat /etc/resolv.conf; grep ^hosts /etc/nsswitch.conf; nft list set inet pixels_egress dns4; ' +
                'systemctl list-units --all "pixels-egress*" --no-legend; journalctl -u "pixels-egress*" -n 20 --no-pager',
            )
          ).output
        }`,
      );
    await sh(exec, 'pixels-egress refresh');
    assert.equal((await sh(exec, 'getent hosts allowed.test')).exitCode, 0);
    // An explicitly configured resolver replaces the one from resolv.conf.
    await applyEgress(exec, { ...original, resolvers: [NET.otherDnsV4] });
    assert.notEqual(
      (await sh(exec, 'getent hosts allowed.test')).exitCode,
      0,
      'resolv.conf server no longer allowed',
    );
    await useTestResolver(backend, name, NET.otherDnsV4);
    assert.equal((await sh(exec, 'getent hosts allowed.test')).exitCode, 0);
    await useTestResolver(backend, name, NET.dnsV4);
    await applyEgress(exec, original);
    assert.equal((await sh(exec, 'getent hosts allowed.test')).exitCode, 0);
  });

  test('a resolver the policy drops is refused at once, also for a query on the ports of an allowed one', async (t) => {
    await holdRefreshTimer(t);
    // An allowed query leaves a conntrack entry (30 s); a later query from the same port to the same server has
    // the same 5-tuple, so a rule that trusts established flows would let it through after the resolver is gone.
    const port = 40053;
    const before = await dnsQueryFromPort(exec, NET.dnsV4, port, 'allowed.test');
    assert.equal(before.exitCode, 0, `the configured resolver answers: ${before.output}`);
    await useTestResolver(backend, name, NET.otherDnsV4);
    await sh(exec, 'pixels-egress refresh');
    const after = await dnsQueryFromPort(exec, NET.dnsV4, port, 'allowed.test');
    assert.notEqual(after.exitCode, 0, 'the old resolver is refused although its conntrack entry is alive');
    assert.match(after.output, /no answer/);
    const now = await dnsQueryFromPort(exec, NET.otherDnsV4, port, 'allowed.test');
    assert.equal(now.exitCode, 0, `the new resolver answers: ${now.output}`);
  });

  test('an explicit refresh waits for a run under way; only the timer form skips it', async (t) => {
    await holdRefreshTimer(t);
    const dns4 = async () => (await sh(exec, 'nft list set inet pixels_egress dns4')).output;
    assert.match(await dns4(), new RegExp(NET.dnsV4.replace(/\./g, '\\.')));
    // Another run holds the lock (as a timer run would) while the sandbox's resolver changes.
    await sh(
      exec,
      'mkdir -p /run/pixels && setsid -f flock /run/pixels/egress.lock sleep 4 </dev/null >/dev/null 2>&1; sleep 0.3',
    );
    await useTestResolver(backend, name, NET.otherDnsV4);
    const skipped = await sh(exec, 'pixels-egress refresh --if-idle');
    assert.equal(skipped.exitCode, 0, skipped.output);
    assert.doesNotMatch(
      await dns4(),
      new RegExp(NET.otherDnsV4.replace(/\./g, '\\.')),
      'the timer form skipped',
    );
    const waited = await sh(exec, 'pixels-egress refresh');
    assert.equal(waited.exitCode, 0, waited.output);
    assert.match(
      await dns4(),
      new RegExp(NET.otherDnsV4.replace(/\./g, '\\.')),
      'the explicit refresh ran once the lock was free, with the resolver of now',
    );
  });

  test('the pixel user cannot remove the rules', async () => {
    for (const attempt of [
      'sudo -n nft flush ruleset',
      'nft flush ruleset',
      'sudo -n /usr/sbin/nft delete table inet pixels_egress',
      'sudo -n bash -c "nft flush ruleset"',
      'sudo -n -s true',
      'sudo -n /usr/local/sbin/pixels-apt -o APT::Update::Pre-Invoke::=/bin/sh update',
    ]) {
      const r = await sh(exec, attempt, 'pixel');
      assert.notEqual(r.exitCode, 0, `"${attempt}" as pixel should fail: ${r.output}`);
    }
    // What stays allowed: the package wrapper, which runs as root and checks its arguments.
    const wrapper = await sh(exec, 'sudo -n /usr/local/sbin/pixels-apt frobnicate', 'pixel');
    assert.equal(wrapper.exitCode, 2);
    assert.match(wrapper.output, /'frobnicate' is not allowed/);
    const local = await sh(exec, 'sudo -n /usr/local/sbin/pixels-apt install ./evil.deb', 'pixel');
    assert.match(local.output, /is not a package name/);
    const list = await sh(exec, 'sudo -n -l', 'pixel');
    assert.match(list.output, /pixels-apt/);
    assert.doesNotMatch(list.output, /\(ALL(:ALL)?\) NOPASSWD: ALL/);
    assert.equal((await sh(exec, 'nft list table inet pixels_egress >/dev/null')).exitCode, 0);
    await assertAgentPolicyHolds(exec, 'after the attempts');
  });

  test('after a reboot the same results hold (the boot unit re-applies)', async () => {
    await backend.restart(name, { timeoutSec: 30 });
    await waitBooted(exec);
    await waitForAddresses(exec);
    assert.equal((await sh(exec, 'systemctl is-active pixels-egress.service')).output, 'active');
    await assertAgentPolicyHolds(exec, 'after reboot');
  });

  test('after restoring an older checkpoint the same results hold', async () => {
    await backend.createCheckpoint(name, 'egress-old');
    await allowEgress(exec, 'denied.test');
    await backend.createCheckpoint(name, 'egress-new');
    assert.equal((await fetchFrom(exec, url('denied.test'), 4)).exitCode, 0);
    await backend.restoreCheckpoint(name, 'egress-old');
    await waitBooted(exec);
    await waitForAddresses(exec);
    const recheck = await recheckEgress(exec);
    assert.equal(recheck.reapplied, false, 'the boot unit had already applied the policy');
    assert.deepEqual(recheck.policy.allow, ['allowed.test']);
    await assertAgentPolicyHolds(exec, 'after restore');
  });

  test('a clone has the same policy, enforced from its first boot', async () => {
    const cloneName = `${prefix}-egc`;
    await backend.clone({ sandbox: name, checkpoint: 'egress-old' }, cloneName);
    const cloneExec = backendExecutor(backend, cloneName);
    await waitBooted(cloneExec);
    await waitForAddresses(cloneExec);
    await assertAgentPolicyHolds(cloneExec, 'in the clone');
    const status = await recheckEgress(cloneExec);
    assert.equal(status.policy.mode, 'agent');
    assert.equal(status.reapplied, false);
  });

  test('machinery from another version is replaced at the next re-check, and its rules loaded', async () => {
    // An older version's script: without the rule that keeps DNS off the conntrack shortcut, loaded.
    await sh(
      exec,
      `sed -i '/ct direction original goto destination/d' ${GUEST_PATHS.egressScript} && ` +
        `echo older > ${EGRESS_MACHINERY_MARKER} && ${GUEST_PATHS.egressScript} apply`,
    );
    const rules = async () => (await sh(exec, 'nft list chain inet pixels_egress output')).output;
    assert.doesNotMatch(await rules(), /ct direction original/);
    const recheck = await recheckEgress(exec);
    assert.equal(recheck.updated, true, 'the machinery was replaced');
    assert.equal(recheck.reapplied, false, 'its rules were loaded: not a policy that failed to hold');
    assert.equal(recheck.machinery, egressMachineryHash());
    assert.match(await rules(), /ct direction original/);
    const again = await recheckEgress(exec);
    assert.equal(again.updated, false, 'once is enough');
    await assertAgentPolicyHolds(exec, 'after the machinery update');
  });

  test('unrestricted removes the rules and gives pixel sudo back; agent locks again', async () => {
    let status = await setEgressMode(exec, 'unrestricted');
    assert.equal(status.policy.mode, 'unrestricted');
    assert.ok(status.enforced);
    assert.equal((await fetchFrom(exec, url('denied.test'), 4)).exitCode, 0);
    assert.equal((await sh(exec, 'sudo -n true', 'pixel')).exitCode, 0);
    assert.deepEqual(status.policy.allow, ['allowed.test'], 'the sandbox keeps its own entries across modes');
    status = await setEgressMode(exec, 'agent');
    assert.equal(status.policy.mode, 'agent');
    await assertAgentPolicyHolds(exec, 'back in agent mode');
    assert.notEqual((await sh(exec, 'sudo -n true', 'pixel')).exitCode, 0);
  });

  test('the timer re-resolves allowed domains, so a host that moves stays reachable', async () => {
    // A short refresh interval for this test; the machinery is reinstalled because its timer changed.
    const status = await showEgress(exec);
    await applyEgress(exec, withAllowed(status.policy, 'cdn.test'), { refreshSeconds: 10 });
    assert.equal(
      (await fetchFrom(exec, url(NET.deniedV4), 4)).exitCode,
      0,
      'cdn.test is at the denied address',
    );
    net.names.set('cdn.test', [NET.movedV4]);
    const deadline = Date.now() + 40_000;
    let moved = await fetchFrom(exec, url(NET.movedV4), 4);
    while (moved.exitCode !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      moved = await fetchFrom(exec, url(NET.movedV4), 4);
    }
    assert.equal(
      moved.exitCode,
      0,
      `the new address became reachable without any host action: ${moved.output}`,
    );
    assert.equal((await fetchFrom(exec, url(NET.deniedV4), 4)).exitCode, 7, 'the old address left the set');
    // The name stops resolving (DNS trouble): its last known address stays allowed.
    net.names.delete('cdn.test');
    const refresh = await sh(exec, 'pixels-egress refresh');
    assert.match(refresh.output, /did not resolve \(last known addresses kept\):.* cdn\.test/);
    assert.equal((await fetchFrom(exec, url(NET.movedV4), 4)).exitCode, 0);
    await denyEgress(exec, 'cdn.test');
    assert.equal((await fetchFrom(exec, url(NET.movedV4), 4)).exitCode, 7);
  });

  test('allowlist mode allows only the user entries', async () => {
    const status = await setEgressMode(exec, 'allowlist');
    assert.equal(status.policy.mode, 'allowlist');
    assert.deepEqual(status.effective, ['allowed.test']);
    await assertAgentPolicyHolds(exec, 'allowlist');
  });
});
