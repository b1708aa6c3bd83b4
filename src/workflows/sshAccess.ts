// Our side of SSH: which key we log in with, where sandbox host keys are pinned (a known_hosts file we own), and
// one SshPool for terminals, Run Command and the workflows. The SSH layer (and with it ssh2) loads on first use.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../core/backend';
import { resolveJumpHost, type JumpHostConfig, type PixelsConfig, type ServerConfig } from '../core/config';
import type { Disposable } from '../core/disposable';
import type { Logger } from '../core/log';
import {
  CancelledError,
  ConnectionError,
  NotFoundError,
  PixelsError,
  SecurityError,
  TimeoutError,
  ValidationError,
} from '../core/errors';
import { explainUnreachable, type NetworkPlan } from '../core/network-plan';
import { sandboxAlias } from '../core/sandbox-alias';
import type { OperationOptions } from '../core/sandbox';
import type { Sandbox } from '../core/sandbox';
import type { JumpHost, SshPool, SshTarget, UserIdentity } from '../ssh/index';
import { loadSsh } from './lazy';

/** Where Pixels keeps its own SSH files (known_hosts, hosts config, dedicated key); PIXELS_SSH_DIR overrides it. */
export function pixelsSshDir(): string {
  return process.env.PIXELS_SSH_DIR || join(homedir(), '.ssh', 'pixels');
}

/**
 * Works around an Incus answer (404 to an append to a file that does not exist yet, so a fresh image without
 * /root/.ssh/authorized_keys could not get our key): where the backend can read files, a missing file is created
 * empty first. An existing file is never overwritten.
 */
async function ensureRootKeysFile(backend: Backend, name: string): Promise<void> {
  const reader = (backend as { readFile?: (name: string, path: string) => Promise<Buffer> }).readFile;
  if (typeof reader !== 'function') return;
  const path = '/root/.ssh/authorized_keys';
  const missing = await reader.call(backend, name, path).then(
    () => false,
    (err: unknown) => (err instanceof NotFoundError ? true : Promise.reject(err)),
  );
  if (missing) await backend.writeFile(name, path, Buffer.alloc(0), { mode: 0o600, uid: 0, gid: 0 });
}

/** Where the SSH settings and the servers' jump hosts come from (the editor's ServerRegistry). */
export interface SshSettingsSource {
  readonly settings: Pick<PixelsConfig, 'ssh'>;
  server(id: string): ServerConfig;
}

export class SshAccess implements Disposable {
  get knownHostsPath(): string {
    return join(pixelsSshDir(), 'known_hosts');
  }
  private poolInstance: SshPool | undefined;
  private following: Promise<void> = Promise.resolve();

  constructor(
    private readonly registry: SshSettingsSource,
    private readonly log: Logger,
  ) {}

  /** The SSH host alias of a sandbox (unique across servers). */
  alias(serverId: string, name: string): string {
    return sandboxAlias(serverId, name);
  }

  /** The SSH host alias of a server's jump host; its host key is pinned under this name (HostKeyAlias). */
  jumpAlias(serverId: string): string {
    return `px-jump.${serverId}`;
  }

  /** The server's jump host with defaults applied; undefined when it has none. */
  jumpSettings(serverId: string): JumpHostConfig | undefined {
    const server = this.registry.server(serverId);
    if (!server.jumpHost) return undefined;
    const jump = resolveJumpHost(server);
    if (!jump)
      throw new ValidationError(
        `The jump host of "${server.label}" is incomplete (it needs a host and a user); run "Pixels: Set Up Jump Host…".`,
      );
    return jump;
  }

  async jumpHostKey(serverId: string): Promise<string | undefined> {
    const ssh = await loadSsh();
    return (await new ssh.KnownHosts(this.knownHostsPath).lookup(this.jumpAlias(serverId)))[0];
  }

  /** Pins a jump host's key under its alias (replacing an older one: only Set Up Jump Host calls this). */
  async pinJumpHostKey(serverId: string, hostKey: string): Promise<void> {
    const ssh = await loadSsh();
    await new ssh.KnownHosts(this.knownHostsPath).set([this.jumpAlias(serverId)], hostKey);
  }

  /** The server's jump host as an SSH hop: its key must have been pinned by Set Up Jump Host before. */
  async jumpHost(serverId: string, jump = this.jumpSettings(serverId)): Promise<JumpHost | undefined> {
    if (!jump) return undefined;
    const hostKey = await this.jumpHostKey(serverId);
    if (!hostKey)
      throw new SecurityError(
        `The SSH host key of the jump host ${jump.host} is not pinned on this machine, so Pixels will not connect through it. Run "Pixels: Set Up Jump Host…" to check and pin it.`,
      );
    const identity = await this.identity();
    return {
      host: jump.host,
      port: jump.port,
      username: jump.user,
      privateKey: identity.privateKey,
      hostKey,
      label: `jump host ${jump.user}@${jump.host}:${jump.port}`,
    };
  }

  get user(): string {
    return this.registry.settings.ssh.user;
  }

  /**
   * The user's key: the configured one; when the default ~/.ssh/id_ed25519 does not exist, a dedicated key
   * under ~/.ssh/pixels is created (a path the user set explicitly must exist).
   */
  async identity(): Promise<UserIdentity> {
    const ssh = await loadSsh();
    const configured = this.registry.settings.ssh.identityFile;
    const isDefault = configured === join(homedir(), '.ssh', 'id_ed25519');
    if (isDefault && !existsSync(configured)) {
      const dedicated = join(pixelsSshDir(), 'id_ed25519');
      if (!existsSync(dedicated)) this.log.info(`no ${configured}; creating a dedicated key ${dedicated}`);
      return ssh.ensureDedicatedIdentity(dedicated);
    }
    return ssh.loadUserIdentity(configured);
  }

  /**
   * New host key + the user's key into a sandbox (root's authorized_keys, and pixel's unless we log in as root);
   * the host key is pinned locally. An image without the `pixel` user gets root's only, with a warning.
   */
  async prepare(backend: Backend, serverId: string, name: string): Promise<void> {
    const ssh = await loadSsh();
    const identity = await this.identity();
    const hostKey = ssh.generateHostKey(`pixels-${name}`);
    const options = (pixelUser: boolean) => ({
      userPublicKey: identity.publicOpenSsh,
      hostKey,
      pixelUser,
      knownHosts: { file: new ssh.KnownHosts(this.knownHostsPath), names: [this.alias(serverId, name)] },
    });
    const forPixel = this.user !== 'root';
    await ensureRootKeysFile(backend, name);
    try {
      await ssh.prepareSandboxAccess(backend, name, options(forPixel));
    } catch (err) {
      if (!(forPixel && err instanceof NotFoundError)) throw err;
      this.log.warn(
        `sandbox ${name}: the image has no "pixel" user (${err.message}); only root's key was installed. ` +
          'Log in as root (pixels [ssh] user / PIXELS_SSH_USER) or provision the sandbox.',
      );
      await ssh.prepareSandboxAccess(backend, name, options(false));
    }
    this.log.info(
      `sandbox ${name}: SSH access prepared (host key ${ssh.fingerprint(hostKey.publicOpenSsh)})`,
    );
  }

  /**
   * Puts SSH access into a sandbox and leaves it running. Keys go in before the first boot where the server
   * allows it; a server that writes files only into a running sandbox (TrueNAS mounts the filesystem only then)
   * gets them after the start, followed by a restart so sshd serves the pinned host key.
   */
  async installAndBoot(
    backend: Backend,
    serverId: string,
    name: string,
    running: boolean,
    op: OperationOptions,
    step: (message: string) => void,
    clone?: { from: string },
  ): Promise<void> {
    // A backend whose file writes could be redirected by a link planted inside (TrueNAS) writes only into a
    // sandbox it has just created; into any other, the keys go in over SSH with the host key pinned here (for a
    // clone: its source's, which it still serves), as root inside the sandbox.
    const caps = await backend.capabilities();
    if (clone && !caps.writesResolveInSandbox) {
      const pinned = await this.hostKey(serverId, clone.from);
      if (!pinned)
        throw new ValidationError(
          `The clone "${name}" cannot get its own identity: SSH access to "${clone.from}" is not set up from this machine.`,
        );
      return this.installOverSsh(backend, serverId, name, pinned, true, running, op, step);
    }
    try {
      await this.installWithFiles(backend, serverId, name, running, op, step);
    } catch (err) {
      // Refused before anything was written (SecurityError): over SSH when this machine knows its host key.
      const pinned =
        err instanceof SecurityError && !caps.writesResolveInSandbox
          ? await this.hostKey(serverId, name)
          : undefined;
      if (!pinned) throw err;
      this.log.info(`sandbox ${name}: the server will not write its files; writing them over SSH`);
      const now = (await backend.get(name)).status === 'running';
      await this.installOverSsh(backend, serverId, name, pinned, false, now, op, step);
    }
  }

  private async installOverSsh(
    backend: Backend,
    serverId: string,
    name: string,
    pinned: string,
    newIdentity: boolean,
    running: boolean,
    op: OperationOptions,
    step: (message: string) => void,
  ): Promise<void> {
    if (!running) {
      step('starting');
      await backend.start(name, op);
    }
    step(
      newIdentity
        ? 'giving the clone its own identity and SSH host key'
        : 'installing the SSH host key and your key',
    );
    await this.prepareOverSsh(backend, serverId, name, pinned, newIdentity, op.signal);
    step('restarting so sshd serves the pinned host key');
    await backend.restart(name, {}, op);
  }

  /** Through the backend's file API: before the first boot where the server allows it, else after a start. */
  private async installWithFiles(
    backend: Backend,
    serverId: string,
    name: string,
    running: boolean,
    op: OperationOptions,
    step: (message: string) => void,
  ): Promise<void> {
    if (!running) {
      try {
        step('installing the SSH host key and your key');
        await this.prepare(backend, serverId, name);
        step('starting');
        await backend.start(name, op);
        return;
      } catch (err) {
        const needsRunning = err instanceof ValidationError && err.problems.some((p) => p.field === 'name');
        if (!needsRunning) throw err;
        this.log.info(`sandbox ${name}: files can only be written while it runs; starting it first`);
        step('starting');
        await backend.start(name, op);
      }
    }
    step('installing the SSH host key and your key');
    await this.prepare(backend, serverId, name);
    step('restarting so sshd serves the pinned host key');
    await backend.restart(name, {}, op);
  }

  /** prepare() written by root inside the running sandbox over SSH, connecting with `pinnedKey`. */
  private async prepareOverSsh(
    backend: Backend,
    serverId: string,
    name: string,
    pinnedKey: string,
    newIdentity: boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    const ssh = await loadSsh();
    const identity = await this.identity();
    const sandbox = await this.waitForAddress(backend, name, signal);
    const target: SshTarget = {
      host: sandbox.ipv4!,
      username: 'root',
      privateKey: identity.privateKey,
      hostKey: pinnedKey,
      label: `sandbox ${name}`,
    };
    const pool = await this.pool();
    await ssh.waitForSsh(target, { timeoutMs: 60_000, pool, signal, label: `sandbox ${name}` });
    const hostKey = ssh.generateHostKey(`pixels-${name}`);
    try {
      await ssh.prepareSandboxAccessOverSsh(pool, target, name, {
        userPublicKey: identity.publicOpenSsh,
        hostKey,
        pixelUser: this.user !== 'root',
        newIdentity,
        knownHosts: { file: new ssh.KnownHosts(this.knownHostsPath), names: [this.alias(serverId, name)] },
      });
    } finally {
      // The connection was made with the old host key; the next one must check the new one.
      await pool.close(target);
    }
    this.log.info(
      `sandbox ${name}: SSH access ${newIdentity ? 'and a new identity ' : ''}written over SSH (host key ${ssh.fingerprint(hostKey.publicOpenSsh)})`,
    );
  }

  async hostKey(serverId: string, name: string): Promise<string | undefined> {
    const ssh = await loadSsh();
    const keys = await new ssh.KnownHosts(this.knownHostsPath).lookup(this.alias(serverId, name));
    return keys[0];
  }

  /** Records the sandbox's current IP next to its alias (OpenSSH checks known_hosts by HostName). */
  async pinAddress(serverId: string, sandbox: Sandbox, hostKey: string): Promise<void> {
    const ssh = await loadSsh();
    const names = [this.alias(serverId, sandbox.name), ...(sandbox.ipv4 ? [sandbox.ipv4] : [])];
    await new ssh.KnownHosts(this.knownHostsPath).set(names, hostKey);
  }

  async target(serverId: string, sandbox: Sandbox): Promise<SshTarget> {
    if (sandbox.status !== 'running')
      throw new ValidationError(`Sandbox "${sandbox.name}" is ${sandbox.status}; start it first.`);
    if (!sandbox.ipv4) throw new ValidationError(`Sandbox "${sandbox.name}" has no IP address yet.`);
    const hostKey = await this.hostKey(serverId, sandbox.name);
    if (!hostKey)
      throw new SecurityError(
        `The SSH host key of "${sandbox.name}" is not known on this machine (it was not created or cloned here), so Pixels will not connect to it. Run "Pixels: Set Up SSH Access…" to give it a pinned host key.`,
      );
    const identity = await this.identity();
    const jump = await this.jumpHost(serverId);
    return {
      host: sandbox.ipv4,
      username: this.user,
      privateKey: identity.privateKey,
      hostKey,
      label: jump ? `sandbox ${sandbox.name} (through ${jump.host})` : `sandbox ${sandbox.name}`,
      ...(jump ? { jump } : {}),
    };
  }

  /** A target for `user` (default the configured one), for a sandbox already known to be running with an IP. */
  async targetAs(serverId: string, sandbox: Sandbox, user: string): Promise<SshTarget> {
    return { ...(await this.target(serverId, sandbox)), username: user };
  }

  /** Polls until a booted sandbox has its IPv4 address (DHCP takes a moment), bounded. */
  async waitForAddress(
    backend: Backend,
    name: string,
    signal?: AbortSignal,
    timeoutMs = 60_000,
  ): Promise<Sandbox> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal?.aborted) throw new CancelledError();
      const sandbox = await backend.get(name);
      if (sandbox.status !== 'running')
        throw new ValidationError(`Sandbox "${name}" is ${sandbox.status}; start it first.`);
      if (sandbox.ipv4) return sandbox;
      if (Date.now() > deadline)
        throw new TimeoutError(
          explainUnreachable({
            name,
            plan: await this.planOf(backend),
            lastSeen: `no IP address within ${timeoutMs / 1000} s`,
          }),
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * Readiness: running, has an IP, and sshd answers with the pinned key and accepts our login (the connection
   * stays warm in the pool). TimeoutError with what was seen last on expiry.
   */
  async readyTarget(
    backend: Backend,
    serverId: string,
    name: string,
    signal?: AbortSignal,
    user = this.user,
  ): Promise<SshTarget> {
    const ssh = await loadSsh();
    let last: SshTarget | undefined;
    try {
      await ssh.waitForSsh(
        async () => {
          const sandbox = await backend.get(name);
          if (sandbox.status !== 'running')
            throw new ValidationError(`Sandbox "${name}" is ${sandbox.status}; start it first.`);
          if (!sandbox.ipv4) return undefined;
          last = await this.targetAs(serverId, sandbox, user);
          return last;
        },
        { timeoutMs: 60_000, pool: await this.pool(), signal, label: `sandbox ${name}` },
      );
    } catch (err) {
      throw await this.explained(err, backend, name, last?.host);
    }
    if (!last) throw new TimeoutError(`Sandbox "${name}" was not ready for SSH.`);
    return last;
  }

  /** The backend's network plan, or undefined when it cannot tell (or cannot be asked right now). */
  private async planOf(backend: Backend): Promise<NetworkPlan | undefined> {
    try {
      return await backend.networkPlan?.();
    } catch (err) {
      this.log.warn(`network plan: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /**
   * A timeout or connection failure becomes one that says why the address cannot be reached (NAT'd bridge,
   * MACVLAN seen from the server, no address yet) and which fix applies. Other errors pass unchanged.
   */
  private async explained(err: unknown, backend: Backend, name: string, address?: string): Promise<unknown> {
    if (!(err instanceof TimeoutError || err instanceof ConnectionError)) return err;
    const text = explainUnreachable({
      name,
      address,
      plan: await this.planOf(backend),
      lastSeen: (err as PixelsError).message.replace(/\.$/, ''),
    });
    this.log.warn(text);
    return err instanceof TimeoutError
      ? new TimeoutError(text, { cause: err })
      : new ConnectionError(text, { cause: err });
  }

  async pool(): Promise<SshPool> {
    if (!this.poolInstance) {
      const ssh = await loadSsh();
      this.poolInstance = new ssh.SshPool({ log: this.log });
    }
    return this.poolInstance;
  }

  /**
   * A refresh listed these sandboxes: entries of ours whose HostName is not the sandbox's current IPv4 are moved
   * (config entry and known_hosts address; the pinned key stays). Reads only local files; nothing is loaded or
   * written when Pixels never wrote an SSH config entry. Runs one at a time (refreshes can overlap).
   */
  followAddresses(
    serverId: string,
    sandboxes: readonly Sandbox[],
    configPath: string | undefined,
  ): Promise<void> {
    const hostsPath = join(pixelsSshDir(), 'config');
    const run = async () => {
      if (!existsSync(hostsPath)) return;
      const ssh = await loadSsh();
      const changes = await ssh.followAddresses({
        writer: new ssh.SshConfigWriter({ configPath, hostsPath }),
        knownHosts: new ssh.KnownHosts(this.knownHostsPath),
        sandboxes,
        aliasOf: (name) => this.alias(serverId, name),
        onWarning: (w) => this.log.warn(`ssh config: ${w}`),
      });
      for (const c of changes)
        this.log.info(
          `${c.alias}: IP changed ${c.from} -> ${c.to}; SSH config entry${c.keyMoved ? ' and known_hosts address' : ''} updated`,
        );
    };
    this.following = this.following.then(run).catch((err: unknown) => {
      this.log.warn(
        `server ${serverId}: could not update SSH config entries to new sandbox addresses: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
    return this.following;
  }

  /** A destroyed sandbox: its pinned key and its Remote-SSH entry go. */
  async forget(
    serverId: string,
    name: string,
    ip: string | undefined,
    configPath: string | undefined,
  ): Promise<void> {
    if (!existsSync(this.knownHostsPath)) return; // nothing was ever pinned or written
    const ssh = await loadSsh();
    const alias = this.alias(serverId, name);
    await new ssh.KnownHosts(this.knownHostsPath).remove([alias, ...(ip ? [ip] : [])]);
    await new ssh.SshConfigWriter({ configPath, hostsPath: join(pixelsSshDir(), 'config') }).removeHost(
      alias,
    );
  }

  /** Drops the pooled connections to a sandbox's address: it is being stopped or destroyed, they cannot outlive it. */
  async disconnect(ip: string | undefined): Promise<void> {
    if (ip) await this.poolInstance?.closeHost(ip);
  }

  dispose(): void {
    this.poolInstance?.dispose();
  }
}
