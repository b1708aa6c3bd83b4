// What the agent tools need from the program they run in. The editor implements it with its services (settings,
// SecretStorage API keys, pinned SSH host keys, the shared workflows); tests implement it on the lab. The tools
// never see how a backend or an SSH connection is made.
import type { Backend } from '../core/backend';
import type { Sandbox } from '../core/sandbox';
import type { SandboxRunner } from './runner';

export interface AgentServer {
  id: string;
  label: string;
}

/** What a tool call hands the long work it starts: its cancellation, and what is happening, a line at a time. */
export interface CallContext {
  signal?: AbortSignal;
  /** A step or a server job's progress ("Creating sandbox "x": provisioning"); MCP sends it as a notification. */
  progress?: (message: string) => void;
}

export interface SandboxRef {
  serverId: string;
  name: string;
}

/** A base (a ready-made sandbox to clone from), as `list_bases` shows it. */
export interface AgentBase {
  serverId: string;
  name: string;
  description?: string;
  /** pixels' statuses, and `incomplete`: its sandbox exists without a checkpoint (a build was cut short). */
  status: 'ready' | 'missing' | 'building' | 'failed' | 'incomplete';
  error?: string;
  /** Its newest checkpoint, the one a sandbox is cloned from. */
  lastCheckpoint?: string;
}

/** Bases: listed, and a new sandbox made from one (a clone of its newest checkpoint plus the usual checks). */
export interface AgentBases {
  list(serverId: string): Promise<AgentBase[]>;
  createFrom(serverId: string, base: string, name: string, call?: CallContext): Promise<Sandbox>;
}

/**
 * The sandbox workflows shared with the commands (create → provision → egress → SSH access; clone → identity →
 * egress re-check; restore → re-check; destroy → forget SSH entries). They never ask the user anything: the
 * caller confirmed already.
 */
export interface AgentWorkflows {
  create(serverId: string, name: string, image: string | undefined, call?: CallContext): Promise<Sandbox>;
  clone(
    source: SandboxRef,
    checkpoint: string | undefined,
    newName: string,
    call?: CallContext,
  ): Promise<Sandbox>;
  restore(ref: SandboxRef, checkpoint: string, call?: CallContext): Promise<void>;
  destroy(ref: SandboxRef, call?: CallContext): Promise<void>;
}

/** The agent lifecycle policy's list: sandboxes agents made (stopped when idle, destroyed when too old). */
export interface AgentLifecycle {
  /** An agent created it from an image (a base's clone is marked by the bases themselves). */
  created(serverId: string, name: string): Promise<void>;
  /** An agent did something in it: its idle time starts anew. */
  touched(serverId: string, name: string): Promise<void>;
  destroyed(serverId: string, name: string): Promise<void>;
}

export interface AgentHost {
  /** The configured servers, in the order the user sees them. */
  servers(): AgentServer[];
  backend(serverId: string): Promise<Backend>;
  /** Runs commands as root in a running sandbox; throws an error that says what is missing (e.g. SSH access). */
  runner(ref: SandboxRef, signal?: AbortSignal): Promise<SandboxRunner>;
  readonly workflows: AgentWorkflows;
  /** Absent until bases exist on this host. */
  readonly bases?: AgentBases;
  /** Absent where the lifecycle policy is not kept. */
  readonly lifecycle?: AgentLifecycle;
  /** A tool changed something on the server (the editor refreshes its view). */
  changed?(serverId: string): void;
}
