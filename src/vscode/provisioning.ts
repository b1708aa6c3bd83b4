// Runs src/guest provisioning in a sandbox from the editor: options from the settings, a progress notification
// with the current step, every step's state kept for the tree (child rows under the sandbox while it
// provisions), each step's log streamed (redacted) to the "Pixels" channel. A failing step ends the run with
// ProvisioningFailed (the step and the tail of its log); re-running resumes thanks to the markers in the sandbox.
import { readFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import type { Backend } from '../core/backend';
import { CancelledError, ValidationError } from '../core/errors';
import type { EgressMode } from '../core/sandbox';
import type { DownloadSources, ProvisionOptions, StepOutcome, StepView, ToolSpec } from '../guest/index';
import { loadGuest } from '../core/lazy';
import { waitBooted } from '../workflows/boot';
import { ProvisioningFailed } from '../workflows/provision';
import type { EgressStatusCache } from './egressStatus';
import type { Log } from './log';
import type { ServerRegistry } from './servers';
import type { SshAccess } from './sshAccess';

/** `node@lts`, `npm:@openai/codex@latest`, `npm:opencode-ai` (version `latest`). */
export function parseToolSetting(entry: string): ToolSpec {
  const at = entry.lastIndexOf('@');
  const versioned = at > 0 && entry[at - 1] !== ':' && entry[at - 1] !== '/';
  return versioned
    ? { name: entry.slice(0, at), version: entry.slice(at + 1) }
    : { name: entry, version: 'latest' };
}

interface ProvisionSettings {
  tools: ToolSpec[];
  packages?: string[];
  setupScript?: string;
  timeouts: Record<string, number>;
  sources: Partial<DownloadSources>;
  agentExtra: string[];
}

export function readProvisionSettings(): ProvisionSettings {
  const c = vscode.workspace.getConfiguration('pixels');
  const sources: Partial<DownloadSources> = {};
  const url = (key: string) => c.get<string>(key)?.trim() || undefined;
  const mise = url('provision.miseInstallerUrl');
  if (mise) sources.miseInstallerUrl = mise;
  const npm = url('provision.npmRegistry');
  if (npm) sources.npmRegistry = npm;
  const node = url('provision.nodeMirror');
  if (node) sources.nodeMirror = node;
  const apt = url('provision.aptMirror');
  if (apt) sources.aptMirror = apt;
  const seconds = c.get<Record<string, number>>('provision.stepTimeoutSeconds') ?? {};
  const timeouts: Record<string, number> = {};
  for (const [id, s] of Object.entries(seconds)) timeouts[id] = s * 1000;
  return {
    tools: (c.get<string[]>('provision.tools') ?? []).map(parseToolSetting),
    packages: c.get<string[] | null>('provision.packages') ?? undefined,
    setupScript: c.get<string>('provision.setupScript')?.trim() || undefined,
    timeouts,
    sources,
    agentExtra: c.get<string[]>('egress.agentExtraDomains') ?? [],
  };
}

/**
 * The `[env]` image variables, `$VAR` expanded from the editor's environment as pixels does; src/guest writes
 * them to /etc/environment and profile.d (and rejects values those files cannot hold before anything runs).
 */
function imageVariables(
  image: Record<string, string>,
  expand: (value: string, hostEnv: Record<string, string | undefined>) => string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(image)) out[key] = expand(value, process.env);
  return out;
}

const MODES_KEY = 'pixels.provisionedEgress';

interface Run {
  steps: StepView[];
  /** The notification's headlines, in order ("Install mise (5/8)"). */
  headlines: string[];
  active: boolean;
  failed?: string;
}

export class ProvisioningService implements vscode.Disposable {
  private readonly runs = new Map<string, Run>();
  private readonly emitter = new vscode.EventEmitter<void>();
  /** Fires when a step changes state (not on every log line). */
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly registry: ServerRegistry,
    private readonly ssh: SshAccess,
    private readonly log: Log,
    private readonly state: vscode.Memento,
    private readonly egressStatus: EgressStatusCache,
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
  run(serverId: string, name: string): Run | undefined {
    return this.runs.get(this.key(serverId, name));
  }

  /** The options built from the settings (validated by src/guest before anything runs). */
  async options(hostPublicKey: string, userPublicKey: string, egress: EgressMode): Promise<ProvisionOptions> {
    const guest = await loadGuest();
    const s = readProvisionSettings();
    let setupScript: ProvisionOptions['setupScript'];
    if (s.setupScript) {
      const content = await readFile(s.setupScript, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new ValidationError(
          `The setup script ${s.setupScript} (setting pixels.provision.setupScript) cannot be read: ${err.code ?? err.message}.`,
        );
      });
      setupScript = { content };
    }
    return {
      userPublicKeys: [userPublicKey],
      hostPublicKey,
      devtools: s.tools.length > 0,
      tools: s.tools,
      packages: s.packages,
      sources: s.sources,
      setupScript,
      egress: guest.buildPolicy(egress, this.registry.settings.defaults.allow, { presetExtra: s.agentExtra }),
      timeouts: s.timeouts,
      environment: imageVariables(this.registry.settings.env.image, guest.expandEnv),
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
   * exec API cuts long commands). `egress` is the initial policy: a sandbox that has one keeps its own.
   */
  async provision(
    backend: Backend,
    serverId: string,
    name: string,
    egress: EgressMode,
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
    guest.provisionSteps(options); // bad settings fail here, before the notification
    await this.rememberMode(serverId, name, mode);
    const key = this.key(serverId, name);
    const tracker = new guest.ProvisionTracker();
    const run: Run = { steps: [], headlines: [], active: true };
    this.runs.set(key, run);
    this.emitter.fire();
    const title = `Provisioning ${name}`;
    /** What runs outside the steps, for the row when it fails. */
    let phase = 'connecting';
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
          const abort = new AbortController();
          const sub = token.onCancellationRequested(() => abort.abort());
          try {
            progress.report({ message: 'connecting' });
            const target = await this.ssh.readyTarget(backend, serverId, name, abort.signal, 'root');
            const exec = guest.sshExecutor(await this.ssh.pool(), target);
            await waitBooted(exec, abort.signal);
            let reported = 0;
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
                const increment = tracker.percent - reported;
                reported = tracker.percent;
                progress.report({
                  message: tracker.headline,
                  increment: increment > 0 ? increment : undefined,
                });
                this.emitter.fire();
              },
              { signal: abort.signal },
            );
            // The policy the sandbox ended up with (it keeps its own when it had one) goes to the host layer.
            phase = 'host guard';
            progress.report({ message: 'host guard' });
            const egressNow = await guest.showEgress(exec);
            this.egressStatus.set(serverId, name, egressNow);
            await this.egressStatus.syncHostGuard(backend, serverId, name, egressNow.policy);
            return outcomes;
          } finally {
            sub.dispose();
          }
        },
      );
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
