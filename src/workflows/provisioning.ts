// Provisioning runs (src/guest) in sandboxes: options from the provisioning settings, every step's state kept for
// a view (child rows under the sandbox while it provisions), each step's log streamed (redacted) to the log, the
// current step reported as the phase's progress. A failing step ends the run with ProvisioningFailed (the step
// and the tail of its log); running again resumes thanks to the markers in the sandbox.
import { readFile } from 'node:fs/promises';
import type { Backend } from '../core/backend';
import { Emitter, type Disposable } from '../core/disposable';
import { CancelledError, ValidationError } from '../core/errors';
import { loadGuest } from './lazy';
import type { Logger } from '../core/log';
import type { EgressMode } from '../core/sandbox';
import type { DownloadSources, ProvisionOptions, StepOutcome, StepView, ToolSpec } from '../guest/index';
import { waitBooted } from './boot';
import type { EgressTracking, RunPhase, SandboxSsh } from './context';
import { ProvisioningFailed } from './provision';

/** What provisioning installs and from where (the editor reads it from its settings). */
export interface ProvisionInputs {
  tools: ToolSpec[];
  packages?: string[];
  /** A local file run as the last step. */
  setupScript?: string;
  /** Per step id, in milliseconds. */
  timeouts: Record<string, number>;
  sources: Partial<DownloadSources>;
  /** The agent preset's extra domains. */
  agentExtra: string[];
  /** `[defaults] allow`: the user's entries of every restricted policy. */
  allow: string[];
  /** The `[env]` image variables, still unexpanded (`$VAR` is expanded from this process's environment). */
  imageEnv: Record<string, string>;
}

/** Where the mode each sandbox was provisioned with is kept (the editor's global state). */
export interface KeyValueStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): PromiseLike<void>;
}

const MODES_KEY = 'pixels.provisionedEgress';

export interface ProvisioningRun {
  steps: StepView[];
  /** The progress headlines, in order ("Install mise (5/8)"). */
  headlines: string[];
  active: boolean;
  failed?: string;
}

export class Provisioning implements Disposable {
  private readonly runs = new Map<string, ProvisioningRun>();
  private readonly emitter = new Emitter<void>();
  /** Fires when a step changes state (not on every log line). */
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly ssh: SandboxSsh,
    private readonly log: Logger,
    private readonly state: KeyValueStore,
    private readonly egressStatus: Pick<EgressTracking, 'set' | 'syncHostGuard'>,
    private readonly inputs: () => ProvisionInputs,
  ) {}

  /**
   * The initial egress mode a sandbox was provisioned with. The step scripts (and so their markers) depend on
   * it, so a retry or a clone must use the same one, or finished steps would run again.
   */
  provisionedWith(serverId: string, name: string): EgressMode | undefined {
    return this.state.get<Record<string, EgressMode>>(MODES_KEY)?.[this.key(serverId, name)];
  }

  async rememberMode(serverId: string, name: string, mode: EgressMode | undefined): Promise<void> {
    const all = { ...(this.state.get<Record<string, EgressMode>>(MODES_KEY) ?? {}) };
    if (mode) all[this.key(serverId, name)] = mode;
    else delete all[this.key(serverId, name)];
    await this.state.update(MODES_KEY, all);
  }

  private key(serverId: string, name: string): string {
    return `${serverId}/${name}`;
  }

  /** The last or current run's view of a sandbox, if it was provisioned in this session. */
  run(serverId: string, name: string): ProvisioningRun | undefined {
    return this.runs.get(this.key(serverId, name));
  }

  /** The options built from the inputs (validated by src/guest before anything runs). */
  async options(hostPublicKey: string, userPublicKey: string, egress: EgressMode): Promise<ProvisionOptions> {
    const guest = await loadGuest();
    const s = this.inputs();
    let setupScript: ProvisionOptions['setupScript'];
    if (s.setupScript) {
      const content = await readFile(s.setupScript, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new ValidationError(
          `The setup script ${s.setupScript} (setting pixels.provision.setupScript) cannot be read: ${err.code ?? err.message}.`,
        );
      });
      setupScript = { content };
    }
    // The `[env]` image variables, `$VAR` expanded from this process's environment as pixels does; src/guest
    // writes them to /etc/environment and profile.d (and rejects values those files cannot hold before anything runs).
    const environment: Record<string, string> = {};
    for (const [key, value] of Object.entries(s.imageEnv))
      environment[key] = guest.expandEnv(value, process.env);
    return {
      userPublicKeys: [userPublicKey],
      hostPublicKey,
      devtools: s.tools.length > 0,
      tools: s.tools,
      packages: s.packages,
      sources: s.sources,
      setupScript,
      egress: guest.buildPolicy(egress, s.allow, { presetExtra: s.agentExtra }),
      timeouts: s.timeouts,
      environment,
    };
  }

  /** Checks the provisioning settings before anything is created (a bad URL or tool name fails here). */
  async checkSettings(egress: EgressMode): Promise<void> {
    const guest = await loadGuest();
    const key = (await this.ssh.identity()).publicOpenSsh;
    guest.provisionSteps(await this.options(key, key, egress));
  }

  /**
   * Provisions a running sandbox whose host key is pinned here, as root over SSH (streamed output; the Incus
   * exec API cuts long commands), in a cancellable phase `Provisioning <name>`. `egress` is the initial policy: a
   * sandbox that has one keeps its own.
   */
  async provision(
    backend: Backend,
    serverId: string,
    name: string,
    egress: EgressMode,
    runPhase: RunPhase,
  ): Promise<StepOutcome[]> {
    const guest = await loadGuest();
    const hostKey = await this.ssh.hostKey(serverId, name);
    if (!hostKey)
      throw new ValidationError(
        `The SSH host key of "${name}" is not pinned on this machine; run "Pixels: Set Up SSH Access…" first.`,
      );
    const identity = await this.ssh.identity();
    const mode = this.provisionedWith(serverId, name) ?? egress;
    const options = await this.options(hostKey, identity.publicOpenSsh, mode);
    guest.provisionSteps(options); // bad settings fail here, before the progress shows
    await this.rememberMode(serverId, name, mode);
    const key = this.key(serverId, name);
    const tracker = new guest.ProvisionTracker();
    const run: ProvisioningRun = { steps: [], headlines: [], active: true };
    this.runs.set(key, run);
    this.emitter.fire();
    /** What runs outside the steps, for the row when it fails. */
    let phase = 'connecting';
    try {
      return await runPhase(`Provisioning ${name}`, true, async (op, step) => {
        step('connecting');
        const target = await this.ssh.readyTarget(backend, serverId, name, op.signal, 'root');
        const exec = guest.sshExecutor(await this.ssh.pool(), target);
        await waitBooted(exec, op.signal);
        const outcomes = await guest.provision(
          exec,
          options,
          (event) => {
            tracker.onEvent(event);
            if (event.type === 'log') {
              this.log.info(`[${name}] ${event.id}: ${event.line}`);
              return;
            }
            if (event.type === 'step' && event.state !== 'pending')
              this.log.info(
                `[${name}] step ${event.id} (${event.title}): ${event.state}${event.alreadyDone ? ' (done earlier)' : ''}${event.error ? ` — ${event.error}` : ''}`,
              );
            run.steps = tracker.all.map((s) => ({ ...s, log: [] }));
            const headline = `${name}: ${tracker.headline}`;
            if (run.headlines[run.headlines.length - 1] !== headline) run.headlines.push(headline);
            op.onProgress?.({ description: tracker.headline, percent: tracker.percent });
            this.emitter.fire();
          },
          { signal: op.signal },
        );
        // The policy the sandbox ended up with (it keeps its own when it had one) goes to the host layer.
        phase = 'host guard';
        step('host guard');
        const egressNow = await guest.showEgress(exec);
        this.egressStatus.set(serverId, name, egressNow);
        await this.egressStatus.syncHostGuard(backend, serverId, name, egressNow.policy);
        return outcomes;
      });
    } catch (err) {
      if (err instanceof guest.ProvisionStepError) {
        run.failed = err.title;
        this.log.error(
          `[${name}] provisioning failed at "${err.title}"; last lines:\n${err.logTail.join('\n')}`,
        );
        throw new ProvisioningFailed(serverId, name, err.step, err.title, err.logTail, err);
      }
      run.failed = err instanceof CancelledError ? 'cancelled' : phase;
      throw err;
    } finally {
      run.active = false;
      run.steps = tracker.all.map((s) => ({ ...s, log: [] }));
      this.emitter.fire();
    }
  }

  /** Whether the sandbox carries provisioning markers (it, or the sandbox it was cloned from, was provisioned). */
  async isProvisioned(backend: Backend, serverId: string, name: string): Promise<boolean> {
    const guest = await loadGuest();
    const target = await this.ssh.readyTarget(backend, serverId, name, undefined, 'root');
    const exec = guest.sshExecutor(await this.ssh.pool(), target);
    const r = await exec(`ls ${guest.GUEST_PATHS.provisionState}/*.done > /dev/null 2>&1`, {
      timeoutMs: 30_000,
    });
    return r.exitCode === 0;
  }

  /** The sandbox is gone or was re-made: forget its run. */
  forget(serverId: string, name: string): void {
    if (this.runs.delete(this.key(serverId, name))) this.emitter.fire();
  }

  /** A destroyed sandbox: its run and its remembered mode go. */
  async destroyed(serverId: string, name: string): Promise<void> {
    this.forget(serverId, name);
    await this.rememberMode(serverId, name, undefined);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
