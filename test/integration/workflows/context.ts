// A WorkflowContext without an editor, as a tool or the MCP server would build one: the lab's Incus backend,
// SshAccess with its own key and known_hosts in a temporary directory, the egress tracker and provisioning with
// in-memory stores, progress collected as events. Everything it records is there for the tests to read.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncusBackend } from '../../../src/backends/incus/index';
import type { ServerConfig } from '../../../src/core/config';
import type { Logger } from '../../../src/core/log';
import type { EgressMode } from '../../../src/core/sandbox';
import { generateKeyPair } from '../../../src/ssh/index';
import type { WorkflowContext } from '../../../src/workflows/context';
import { EgressTracker, type EgressNotice } from '../../../src/workflows/egressTracker';
import { plainRunPhase, type ProgressEvent } from '../../../src/workflows/progress';
import { Provisioning, type KeyValueStore, type ProvisionInputs } from '../../../src/workflows/provisioning';
import { SshAccess } from '../../../src/workflows/sshAccess';

export interface Harness {
  ctx: WorkflowContext;
  ssh: SshAccess;
  tracker: EgressTracker;
  provisioning: Provisioning;
  events: ProgressEvent[];
  notices: EgressNotice[];
  logLines: string[];
  /** How often a workflow said the server's sandboxes changed. */
  changes: () => number;
  /** Aborts the cancellable phases of the workflows run with this context. */
  abort: AbortController;
  sshDir: string;
  dispose(): void;
}

class MemoryStore implements KeyValueStore {
  private readonly values = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }
  async update(key: string, value: unknown): Promise<void> {
    this.values.set(key, value);
  }
}

/** Provisioning with nothing to download (the lab has no internet): user, SSH, env and egress only. */
export const HERMETIC_INPUTS: ProvisionInputs = {
  tools: [],
  packages: [],
  timeouts: {},
  sources: {},
  agentExtra: [],
  allow: [],
  imageEnv: {},
};

export function workflowHarness(
  backend: IncusBackend,
  socketPath: string,
  inputs: ProvisionInputs = HERMETIC_INPUTS,
): Harness {
  // SshAccess reads PIXELS_SSH_DIR for its known_hosts: one directory per harness, removed at the end.
  const sshDir = mkdtempSync(join(tmpdir(), 'pixels-workflows-'));
  process.env.PIXELS_SSH_DIR = sshDir;
  const key = generateKeyPair('workflows-test');
  const identityFile = join(sshDir, 'id_test');
  writeFileSync(identityFile, key.privateOpenSsh, { mode: 0o600 });
  const logLines: string[] = [];
  const line = (level: string) => (message: string) => logLines.push(`${level} ${message}`);
  const log: Logger = {
    trace: () => {},
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  };
  const server: ServerConfig = { id: 'lab', kind: 'incus', label: 'Incus lab', socketPath } as ServerConfig;
  const ssh = new SshAccess({ settings: { ssh: { user: 'root', identityFile } }, server: () => server }, log);
  const notices: EgressNotice[] = [];
  const tracker = new EgressTracker({
    ssh,
    log,
    backendOf: async () => backend,
    productOf: () => 'Incus',
    notify: (n) => notices.push(n),
  });
  const provisioning = new Provisioning(ssh, log, new MemoryStore(), tracker, () => inputs);
  const modes = new Map<string, EgressMode>();
  const events: ProgressEvent[] = [];
  const abort = new AbortController();
  let changes = 0;
  const ctx: WorkflowContext = {
    serverId: 'lab',
    serverLabel: 'Incus lab',
    backend,
    ssh,
    egress: {
      get: (serverId, name) => modes.get(`${serverId}/${name}`),
      set: async (serverId, name, mode) => {
        if (mode) modes.set(`${serverId}/${name}`, mode);
        else modes.delete(`${serverId}/${name}`);
      },
    },
    egressStatus: tracker,
    provisioning,
    log,
    run: plainRunPhase(abort.signal, (e) => events.push(e)),
    sshConfigPath: join(sshDir, 'user-ssh-config'),
    egressInputs: () => ({ allow: inputs.allow, agentExtra: inputs.agentExtra, defaultMode: 'agent' }),
    changed: async () => {
      changes++;
    },
  };
  return {
    ctx,
    ssh,
    tracker,
    provisioning,
    events,
    notices,
    logLines,
    changes: () => changes,
    abort,
    sshDir,
    dispose() {
      ssh.dispose();
      tracker.dispose();
      provisioning.dispose();
      delete process.env.PIXELS_SSH_DIR;
      rmSync(sshDir, { recursive: true, force: true });
    },
  };
}
