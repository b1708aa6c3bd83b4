// Faults of the SSH path during provisioning (part of the faults figure): a real container provisioned over real
// SSH, and in the middle of a step its connection goes away, either cut on the way (a TCP relay on this machine
// drops every connection) or dropped by the sandbox's own sshd (its per-connection process killed). After each,
// the sandbox is read through the Incus API, not over SSH: the failure was reported, the chosen egress policy is in
// force with the provisioning sources gone, the interrupted step is not left running, and provisioning resumes.
import net from 'node:net';
import type { IncusBackend } from '../../src/backends/incus/index';
import {
  backendExecutor,
  buildPolicy,
  provision,
  ProvisionStepError,
  sshExecutor,
  type Executor,
  type ProvisionOptions,
} from '../../src/guest/index';
import { GUEST_PATHS } from '../../src/guest/paths';
import type { StepId } from '../../src/guest/provision/steps';
import {
  generateHostKey,
  generateKeyPair,
  prepareSandboxAccess,
  SshPool,
  waitForSsh,
} from '../../src/ssh/index';
import { FAKE_MISE_INSTALLER } from '../integration/guest/fake-mise';
import {
  labBackend,
  useTestResolver,
  waitBooted,
  waitForAddresses,
  waitForIpv4,
} from '../integration/guest/helpers';
import { startInternet, type Internet } from '../integration/guest/internet';
import type { FaultCase } from './tally';

/** How the connection goes away. */
export const SSH_FAULTS = ['connection cut on the way', 'sshd drops the connection'] as const;
export type SshFault = (typeof SSH_FAULTS)[number];

/** Steps with a window to strike in: a download with the sources open, and the setup script after they closed. */
export const STRUCK_STEPS = ['mise', 'setup'] as const satisfies readonly StepId[];

/**
 * The struck steps print a line and then wait while this file exists (20 s at most): the rig opens the window
 * before a run and closes it once the connection is gone, so the fault always lands in the middle of the step,
 * however slow the machine.
 */
const WINDOW = '/run/pixels-fault-window';
const HOLD_WHILE_WINDOW_OPEN = `echo "holding while ${WINDOW} exists"
n=0; while [ -e ${WINDOW} ] && [ $n -lt 100 ]; do sleep 0.2; n=$((n + 1)); done
`;

/** A TCP relay to one address that can drop every connection going through it at once. */
class CuttableRelay {
  private constructor(
    private readonly server: net.Server,
    private readonly sockets: Set<net.Socket>,
    readonly port: number,
  ) {}

  static async start(host: string, port: number): Promise<CuttableRelay> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((inbound) => {
      const outbound = net.connect(port, host);
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new CuttableRelay(server, sockets, (server.address() as net.AddressInfo).port);
  }

  /** Drops every connection now (no FIN, as a dead link or a reset would); new ones still go through. */
  cut(): number {
    const n = this.sockets.size;
    for (const s of this.sockets) s.resetAndDestroy();
    return n;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export class SshProvisionFaultRig {
  private constructor(
    private readonly backend: IncusBackend,
    private readonly relay: CuttableRelay,
    private readonly pool: SshPool,
    private readonly net: Internet,
    private readonly ssh: Executor,
    private readonly api: Executor,
    private readonly options: ProvisionOptions,
  ) {}

  static async start(prefix: string): Promise<SshProvisionFaultRig> {
    const { lab, backend } = await labBackend();
    const name = `${prefix}-sshpv`;
    const net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
    const user = generateKeyPair('ssh-fault');
    const hostKey = generateHostKey();
    await backend.create({ name, image: lab.image, start: false });
    await prepareSandboxAccess(backend, name, {
      userPublicKey: user.publicOpenSsh,
      hostKey,
      pixelUser: false,
    });
    await backend.start(name);
    const sandbox = await waitForIpv4(backend, name);
    const relay = await CuttableRelay.start(sandbox.ipv4!, 22);
    const target = {
      host: '127.0.0.1',
      port: relay.port,
      username: 'root',
      privateKey: user.privateOpenSsh,
      hostKey: hostKey.publicOpenSsh,
      label: `sandbox ${name}`,
    };
    await waitForSsh(target, 60_000);
    const pool = new SshPool();
    const ssh = sshExecutor(pool, target);
    await waitBooted(ssh);
    await waitForAddresses(ssh);
    await useTestResolver(backend, name);
    const base = `http://allowed.test:${net.port}`;
    net.route(
      '/mise-install.sh',
      FAKE_MISE_INSTALLER.replace('set -eu\n', `set -eu\n${HOLD_WHILE_WINDOW_OPEN}`),
    );
    net.route('/node/index.json', '{}');
    const options: ProvisionOptions = {
      userPublicKeys: [user.publicOpenSsh],
      hostPublicKey: hostKey.publicOpenSsh,
      devtools: true,
      tools: [{ name: 'node', version: 'lts' }],
      packages: [],
      sources: { miseInstallerUrl: `${base}/mise-install.sh`, nodeMirror: `${base}/node` },
      setupScript: { content: `${HOLD_WHILE_WINDOW_OPEN}echo "setup: done"\n` },
      egress: buildPolicy('agent', ['allowed.test']),
      timeouts: { mise: 60_000, tools: 60_000, setup: 60_000 },
    };
    return new SshProvisionFaultRig(backend, relay, pool, net, ssh, backendExecutor(backend, name), options);
  }

  /** Provisions from scratch and takes the connection away while `step` runs; then checks the sandbox. */
  async run(step: StepId, fault: SshFault): Promise<FaultCase> {
    const where = `Incus/SSH ${step} step: ${fault}`;
    const lost: string[] = [];
    const halfMade: string[] = [];
    // From scratch: no step markers, so every step runs again.
    await this.mustRun(`rm -rf ${GUEST_PATHS.provisionState} && touch ${WINDOW}`);
    let struck: Promise<boolean> | undefined;
    let result: unknown;
    let ok = false;
    try {
      await provision(this.ssh, this.options, (e) => {
        // The step's first line of output: its command is running in the sandbox.
        if (e.type === 'log' && e.id === step && struck === undefined) struck = this.strike(fault);
      });
      ok = true;
    } catch (err) {
      result = err;
    }
    const injected = struck !== undefined && (await struck);
    await this.mustRun(`rm -f ${WINDOW}`);
    if (ok) halfMade.push(`provisioning reported done although the connection went away during "${step}"`);
    else if (!(result instanceof ProvisionStepError) || result.step !== step)
      halfMade.push(`the failure names another cause: ${String(result)}`);
    else if (!/egress policy is in force; the provisioning sources were removed/.test(result.message))
      halfMade.push(`the failure does not say the policy is in force: ${result.message}`);
    const egress = await this.api(`${GUEST_PATHS.egressScript} status`, { timeoutMs: 30_000 });
    if (!/^enforced=yes$/m.test(egress.output))
      halfMade.push(`egress policy not enforced: ${egress.output.trim()}`);
    if (!/^provisioning=0$/m.test(egress.output))
      halfMade.push(`provisioning sources still allowed: ${egress.output.trim()}`);
    const running = await this.api(
      `systemctl list-units --no-legend --plain --state=active,activating,deactivating 'pixels-provision-*.service'`,
      { timeoutMs: 30_000 },
    );
    if (running.output.trim())
      halfMade.push(`steps still running after the failure: ${running.output.trim()}`);
    try {
      await provision(this.ssh, this.options);
      const after = await this.api(`${GUEST_PATHS.egressScript} status`, { timeoutMs: 30_000 });
      if (!/^provisioning=0$/m.test(after.output))
        halfMade.push('sources still allowed after the resumed run');
    } catch (err) {
      lost.push(`provisioning could not be resumed: ${String(err)}`);
    }
    if (process.env.PIXELS_RELIABILITY_DEBUG)
      console.log(
        `${where}: ${ok ? 'done' : `failed: ${String(result)}`}`,
        JSON.stringify({ lost, halfMade }),
      );
    return { where, injected, lost, duplicated: [], halfMade };
  }

  /** Takes the connection away; true when it really had one to take. */
  private async strike(fault: SshFault): Promise<boolean> {
    let struck: boolean;
    if (fault === 'connection cut on the way') struck = this.relay.cut() > 0;
    else {
      // The sandbox's sshd: kill its per-connection processes (the listener stays), as a crash or an OOM kill would.
      const r = await this.api(`pkill -KILL -f '^sshd: root' && echo killed`, { timeoutMs: 30_000 });
      struck = r.output.includes('killed');
    }
    await this.mustRun(`rm -f ${WINDOW}`);
    return struck;
  }

  /** Runs a script in the sandbox through the Incus API (not over SSH). */
  inspect(script: string): Promise<{ exitCode: number; output: string }> {
    return this.api(script, { timeoutMs: 30_000 });
  }

  private async mustRun(script: string): Promise<void> {
    const r = await this.api(script, { timeoutMs: 30_000 });
    if (r.exitCode !== 0) throw new Error(`${script}: exit code ${r.exitCode}: ${r.output}`);
  }

  async close(): Promise<void> {
    this.pool.dispose();
    await this.relay.close();
    await this.net.close();
    this.backend.dispose(); // the sandbox goes with the suite's other test instances (same prefix)
  }
}
