// Bases: a sandbox built once (create + provisioning + the base's setup script, then a checkpoint) that agents'
// sandboxes are cloned from, so one is ready in seconds instead of minutes. vscode-free: the sandbox workflows
// (create → provision → egress → SSH access; clone → identity → egress re-check) come in through BaseWorkflows,
// so the commands, the LM tools, the MCP server, the tests and the benchmark all drive the same code.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Backend } from '../core/backend';
import { AlreadyExistsError, NotFoundError, PixelsError, ServerError, ValidationError } from '../core/errors';
import { validateSandboxName } from '../core/names';
import type { Checkpoint, Sandbox } from '../core/sandbox';
import type { Executor } from '../guest/executor';
import { shq, writeFileScript } from '../guest/shell';
import type { AgentSandboxStore } from './agentStore';
import { BUILTIN_SCRIPTS } from './builtinScripts';
import { baseChain, type BaseDefinition, type BasesConfig } from '../core/basesConfig';
import { systemClock, type Clock } from './lifecycle';

/** The label of a base's checkpoint (pixels' MCP base builds use the same). */
export const BASE_CHECKPOINT_LABEL = 'initial';
/** Where the setup script is put inside the sandbox while it runs. */
const SETUP_PATH = '/root/.pixels-base-setup.sh';
const SETUP_TIMEOUT_MS = 60 * 60_000;
const OUTPUT_TAIL_LINES = 15;

export type BaseStatus = 'missing' | 'building' | 'ready' | 'incomplete' | 'failed';

export interface BaseInfo {
  name: string;
  description?: string;
  parentImage?: string;
  from?: string;
  builtin: boolean;
  /** The sandbox that holds the base (`base-<name>`). */
  sandboxName: string;
  /**
   * missing: never built here; building: a build is running (see `step`); ready: built, `lastCheckpoint` is what
   * new sandboxes are cloned from; incomplete: its sandbox exists without a checkpoint (a build was cut short);
   * failed: the last build failed (`error`), nothing of it was kept.
   */
  status: BaseStatus;
  error?: string;
  step?: string;
  lastCheckpoint?: Checkpoint;
}

/** Progress of a long operation, one line at a time (steps, and the setup script's output as it arrives). */
export type BaseProgress = (message: string) => void;

export interface BaseRunOptions {
  progress?: BaseProgress;
  signal?: AbortSignal;
}

/** The sandbox workflows the bases are built with (the same ones the Create and Clone commands run). */
export interface BaseWorkflows {
  backend(serverId: string): Promise<Backend>;
  /** A new sandbox from an image, with the usual provisioning, egress policy and SSH access; left running. */
  create(serverId: string, request: { name: string; image: string }, options: BaseRunOptions): Promise<void>;
  /** A clone of a checkpoint with its own identity (hostname, machine-id, SSH host key) and its egress re-checked. */
  clone(
    serverId: string,
    source: { sandbox: string; checkpoint: string },
    newName: string,
    options: BaseRunOptions,
  ): Promise<Sandbox>;
  /** Runs bash scripts as root in the (running) sandbox. */
  executor(serverId: string, name: string): Promise<Executor>;
  /** Destroys the sandbox and what this machine keeps for it. */
  destroy(serverId: string, name: string): Promise<void>;
}

export interface CreateFromBaseOptions extends BaseRunOptions {
  /** Default: `<agent prefix><6 hex>` (pixels' `mcp-…`). */
  name?: string;
  /** Made by an agent: put it under the lifecycle policy (idle stop, maximum age). */
  agent?: boolean;
}

/** A base's last failed build on a server, kept across restarts so the tree can still say why. */
export interface BaseFailure {
  serverId: string;
  base: string;
  error: string;
  /** ms since the epoch. */
  at: number;
}

export interface BaseServiceDeps {
  workflows: BaseWorkflows;
  /** Read on every call, so a changed config applies at once. */
  config: () => BasesConfig;
  /** Agent sandboxes (lifecycle policy); needed only for `agent: true`. A function: the list may still be loading. */
  agents?: () => Promise<AgentSandboxStore>;
  clock?: Clock;
  log?: { info(m: string): void; warn(m: string): void };
  /** Failed builds from an earlier run, and where to keep the list whenever it changes. */
  failures?: { initial: readonly BaseFailure[]; save(all: BaseFailure[]): void };
}

export const AGENT_SANDBOX_PREFIX = 'mcp-';

/** A fresh name for an agent's sandbox, as pixels makes them (`mcp-` and 6 hex digits). */
export function agentSandboxName(): string {
  return `${AGENT_SANDBOX_PREFIX}${randomBytes(3).toString('hex')}`;
}

export class BaseService {
  private readonly builds = new Map<string, Promise<Checkpoint>>();
  private readonly steps = new Map<string, string>();
  private readonly failures = new Map<string, { error: string; at: number }>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly deps: BaseServiceDeps) {
    for (const f of deps.failures?.initial ?? [])
      this.failures.set(keyOf(f.serverId, f.base), { error: f.error, at: f.at });
  }

  private saveFailures(): void {
    const save = this.deps.failures?.save;
    if (!save) return;
    save(
      [...this.failures].map(([key, f]) => {
        const [serverId, base] = key.split('\u0000') as [string, string];
        return { serverId, base, error: f.error, at: f.at };
      }),
    );
  }

  /** Told when a build starts, moves on a step, ends or fails (the tree redraws). */
  onDidChange(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** The bases the config defines (built-ins and `[mcp.bases.*]`), without asking any server. */
  definitions(): BaseDefinition[] {
    return this.deps.config().bases;
  }

  definition(name: string): BaseDefinition {
    const def = this.definitions().find((b) => b.name === name);
    if (!def)
      throw new NotFoundError(
        `There is no base "${name}". Known bases: ${this.definitions()
          .map((b) => b.name)
          .join(', ')} (built-ins, and [mcp.bases.<name>] in the pixels config).`,
      );
    return def;
  }

  sandboxName(base: string): string {
    return `${this.deps.config().basePrefix}${base}`;
  }

  /** Every base with its status on the server (one list call; checkpoints come with it where the backend can). */
  async list(serverId: string): Promise<BaseInfo[]> {
    const backend = await this.deps.workflows.backend(serverId);
    const sandboxes = await backend.list();
    const withCheckpoints = await Promise.all(
      sandboxes.map(async (s) =>
        s.checkpoints || !this.isBaseSandbox(s.name)
          ? s
          : { ...s, checkpoints: await backend.listCheckpoints(s.name).catch(() => []) },
      ),
    );
    return this.describe(serverId, withCheckpoints);
  }

  /** The bases' status from a list of the server's sandboxes already at hand (the tree's), without a call. */
  describe(serverId: string, sandboxes: readonly Sandbox[]): BaseInfo[] {
    const byName = new Map(sandboxes.map((s) => [s.name, s]));
    return this.definitions().map((def) => {
      const sandbox = byName.get(this.sandboxName(def.name));
      return this.info(serverId, def, sandbox, newest(sandbox?.checkpoints ?? []));
    });
  }

  /** The sandbox holds one of the configured bases. */
  isBaseSandbox(name: string): boolean {
    return this.definitions().some((b) => this.sandboxName(b.name) === name);
  }

  async status(serverId: string, name: string): Promise<BaseInfo> {
    const def = this.definition(name);
    const backend = await this.deps.workflows.backend(serverId);
    const sandboxName = this.sandboxName(name);
    const sandbox = await backend.get(sandboxName).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    const checkpoints = sandbox ? (sandbox.checkpoints ?? (await backend.listCheckpoints(sandboxName))) : [];
    return this.info(serverId, def, sandbox, newest(checkpoints));
  }

  private info(
    serverId: string,
    def: BaseDefinition,
    sandbox: Sandbox | undefined,
    last?: Checkpoint,
  ): BaseInfo {
    const key = keyOf(serverId, def.name);
    const info: BaseInfo = {
      name: def.name,
      builtin: def.builtin,
      sandboxName: this.sandboxName(def.name),
      status: 'missing',
    };
    if (def.description) info.description = def.description;
    if (def.parentImage) info.parentImage = def.parentImage;
    if (def.from) info.from = def.from;
    const failure = this.failures.get(key);
    if (this.builds.has(key)) {
      info.status = 'building';
      info.step = this.steps.get(key);
    } else if (sandbox && last) {
      info.status = 'ready';
      info.lastCheckpoint = last;
    } else if (sandbox) info.status = 'incomplete';
    else if (failure) {
      info.status = 'failed';
      info.error = failure.error;
    }
    return info;
  }

  /**
   * Builds the base (and first the bases it is built on that are not built yet): its sandbox is created from the
   * parent image with provisioning, or cloned from the parent base; the setup script runs as root; the sandbox is
   * stopped and checkpointed. A failed build leaves nothing behind and is reported by list() with its reason.
   * A build already running for this base is joined. Resolves to the base's checkpoint.
   */
  build(serverId: string, name: string, options: BaseRunOptions = {}): Promise<Checkpoint> {
    const def = this.definition(name);
    const key = keyOf(serverId, name);
    const running = this.builds.get(key);
    if (running) return running;
    const report = (message: string) => {
      this.steps.set(key, message);
      options.progress?.(message);
      this.changed();
    };
    const promise = this.runBuild(serverId, def, { ...options, progress: report }).then(
      (checkpoint) => {
        this.endBuild(key);
        return checkpoint;
      },
      (err: unknown) => {
        this.failures.set(key, { error: errorText(err), at: (this.deps.clock ?? systemClock).now() });
        this.saveFailures();
        this.endBuild(key);
        throw err;
      },
    );
    this.builds.set(key, promise);
    this.steps.set(key, 'starting');
    if (this.failures.delete(key)) this.saveFailures();
    this.changed();
    return promise;
  }

  private endBuild(key: string): void {
    this.builds.delete(key);
    this.steps.delete(key);
    this.changed();
  }

  /**
   * Destroys the base's sandbox (its checkpoint with it) and builds it again. What would make the new build fail
   * before it makes anything (an unreadable setup script) is checked first, so the old base is not lost for it.
   */
  async rebuild(serverId: string, name: string, options: BaseRunOptions = {}): Promise<Checkpoint> {
    const def = this.definition(name);
    if (this.builds.has(keyOf(serverId, name)))
      throw new ValidationError(`Base "${name}" is being built right now; wait for that build to end.`);
    await this.setupScript(def);
    await this.delete(serverId, name, options);
    return this.build(serverId, name, options);
  }

  /** Destroys the base's sandbox. Sandboxes already created from it are not touched (they are copies). */
  async delete(serverId: string, name: string, options: BaseRunOptions = {}): Promise<void> {
    this.definition(name);
    const key = keyOf(serverId, name);
    if (this.builds.has(key))
      throw new ValidationError(`Base "${name}" is being built right now; wait for that build to end.`);
    const sandboxName = this.sandboxName(name);
    const backend = await this.deps.workflows.backend(serverId);
    const exists = await backend.get(sandboxName).then(
      () => true,
      (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
    );
    if (exists) {
      options.progress?.(`destroying ${sandboxName}`);
      await this.deps.workflows.destroy(serverId, sandboxName);
    }
    if (this.failures.delete(key)) this.saveFailures();
    this.changed();
  }

  /**
   * A new sandbox cloned from the base's newest checkpoint, with its own identity and its egress re-checked.
   * `agent: true` puts it under the lifecycle policy. Refused with a sentence that says what to do when the base
   * is not built (the caller may offer to build it).
   */
  async createFromBase(
    serverId: string,
    base: string,
    options: CreateFromBaseOptions = {},
  ): Promise<Sandbox> {
    const info = await this.status(serverId, base);
    if (info.status === 'building')
      throw new ValidationError(
        `Base "${base}" is being built (${info.step ?? 'starting'}); create from it when the build is done.`,
      );
    if (info.status !== 'ready' || !info.lastCheckpoint)
      throw new NotFoundError(
        `Base "${base}" is not built on this server${info.status === 'failed' ? ` (its last build failed: ${info.error})` : info.status === 'incomplete' ? ' (its sandbox has no checkpoint: rebuild it)' : ''}. Build it first ("Pixels: Build Base…", or build_base).`,
      );
    const name = options.name ?? agentSandboxName();
    validateSandboxName(name);
    const backend = await this.deps.workflows.backend(serverId);
    const clash = await backend.get(name).then(
      () => true,
      (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
    );
    if (clash) throw new AlreadyExistsError(`A sandbox named "${name}" exists already.`);
    options.progress?.(`cloning base "${base}" (checkpoint ${info.lastCheckpoint.label})`);
    const sandbox = await this.deps.workflows.clone(
      serverId,
      { sandbox: info.sandboxName, checkpoint: info.lastCheckpoint.label },
      name,
      options,
    );
    if (options.agent) {
      if (!this.deps.agents) throw new ValidationError('Agent sandboxes need the agent sandbox list.');
      await (await this.deps.agents()).mark(serverId, name, { by: 'agent', base });
    }
    this.deps.log?.info(`created ${name} from base ${base} (${info.lastCheckpoint.label})`);
    return sandbox;
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  private async runBuild(
    serverId: string,
    def: BaseDefinition,
    options: BaseRunOptions,
  ): Promise<Checkpoint> {
    const progress = options.progress ?? (() => undefined);
    // The script is read before anything is made: an unreadable one is refused with nothing to clean up.
    const script = await this.setupScript(def);
    // Parents first, each only when it is not built yet.
    for (const parent of baseChain(this.definitions(), def.name).slice(0, -1)) {
      const status = await this.status(serverId, parent.name);
      if (status.status === 'ready') continue;
      if (status.status === 'incomplete')
        throw new ValidationError(
          `Base "${def.name}" is built on "${parent.name}", whose sandbox has no checkpoint; rebuild "${parent.name}" first.`,
        );
      progress(`building base "${parent.name}" first (${def.name} is built on it)`);
      await this.build(serverId, parent.name, {
        ...options,
        progress: (m) => progress(`${parent.name}: ${m}`),
      });
    }
    const name = this.sandboxName(def.name);
    validateSandboxName(name);
    const backend = await this.deps.workflows.backend(serverId);
    const existing = await backend.get(name).then(
      (s) => s,
      (err: unknown) => (err instanceof NotFoundError ? undefined : Promise.reject(err)),
    );
    if (existing)
      throw new AlreadyExistsError(
        `Base "${def.name}" already has its sandbox ${name}${(existing.checkpoints?.length ?? 0) > 0 ? '' : ' (without a checkpoint: a build was cut short)'}; use Rebuild Base to build it again.`,
      );
    let made = false;
    try {
      if (def.parentImage) {
        progress(`creating ${name} from ${def.parentImage}`);
        made = true; // the create workflow cleans up after itself, but a later step's failure must remove it
        await this.deps.workflows.create(serverId, { name, image: def.parentImage }, options);
      } else {
        const parent = await this.status(serverId, def.from as string);
        if (!parent.lastCheckpoint)
          throw new NotFoundError(`Base "${def.from}" has no checkpoint to build on.`);
        progress(`cloning base "${def.from}" to ${name}`);
        made = true;
        await this.deps.workflows.clone(
          serverId,
          { sandbox: parent.sandboxName, checkpoint: parent.lastCheckpoint.label },
          name,
          options,
        );
      }
      if (script !== undefined) {
        progress('running the setup script');
        const exec = await this.deps.workflows.executor(serverId, name);
        await runSetupScript(exec, def.name, script, progress, options.signal);
      }
      progress('stopping');
      await backend.stop(name);
      progress('checkpointing');
      const checkpoint = await backend.createCheckpoint(name, BASE_CHECKPOINT_LABEL);
      this.deps.log?.info(`base ${def.name} built (${name}@${checkpoint.label})`);
      return checkpoint;
    } catch (err) {
      // Nothing half-made stays: a base without its setup done must never be cloned from.
      if (made) {
        progress('cleaning up');
        const gone = await backend.get(name).then(
          () => false,
          () => true,
        );
        if (!gone)
          await this.deps.workflows
            .destroy(serverId, name)
            .catch((e: unknown) =>
              this.deps.log?.warn(`cleanup of base sandbox ${name} failed: ${errorText(e)}`),
            );
      }
      throw err;
    }
  }

  private async setupScript(def: BaseDefinition): Promise<string | undefined> {
    const ref = def.setupScript;
    if (!ref) return undefined;
    if (ref.kind === 'embedded') {
      return BUILTIN_SCRIPTS[ref.name];
    }
    try {
      return await readFile(ref.path, 'utf8');
    } catch (err) {
      throw new ValidationError(
        `Base "${def.name}": its setup script ${ref.path} cannot be read (${(err as NodeJS.ErrnoException).code ?? errorText(err)}).`,
      );
    }
  }
}

/**
 * Puts the script in a file and runs it with bash as root, stdin closed (a script that reads stdin must not
 * swallow anything), streaming each output line to `progress`. A non-zero exit fails with the output's tail.
 */
export async function runSetupScript(
  exec: Executor,
  base: string,
  script: string,
  progress: BaseProgress,
  signal?: AbortSignal,
): Promise<void> {
  let pending = '';
  const onOutput = (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) progress(`setup: ${line.trim().slice(0, 200)}`);
  };
  const run = [
    'set -e',
    writeFileScript({ path: SETUP_PATH, content: script, mode: 0o700 }),
    `rc=0; (cd /root && bash ${shq(SETUP_PATH)} </dev/null 2>&1) || rc=$?`,
    `rm -f ${shq(SETUP_PATH)}`,
    'exit $rc',
  ].join('\n');
  const result = await exec(run, { timeoutMs: SETUP_TIMEOUT_MS, onOutput, signal });
  if (pending.trim()) progress(`setup: ${pending.trim().slice(0, 200)}`);
  if (result.exitCode !== 0) {
    const tail = result.output.trim().split('\n').slice(-OUTPUT_TAIL_LINES).join('\n');
    throw new ServerError(
      `The setup script of base "${base}" failed (exit code ${result.exitCode}); the base was not kept. Last output:\n${tail || '(none)'}`,
    );
  }
}

function newest(checkpoints: readonly Checkpoint[]): Checkpoint | undefined {
  let best: Checkpoint | undefined;
  for (const c of checkpoints) if (!best || c.createdAt.getTime() > best.createdAt.getTime()) best = c;
  return best;
}

function keyOf(serverId: string, name: string): string {
  return `${serverId}\u0000${name}`;
}

function errorText(err: unknown): string {
  if (err instanceof PixelsError || err instanceof Error) return err.message;
  return String(err);
}
