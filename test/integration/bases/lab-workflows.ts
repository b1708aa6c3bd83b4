// BaseWorkflows on the Incus lab without an editor, for the bases suite and `npm run bench:base`: the production
// pieces a create and a clone are made of on Incus (the backend's create and clone, whose clone gives the copy
// its own machine-id, MAC and SSH host key; provisioning and the egress re-check from src/guest through the exec
// API), with the SSH login a user would make as the end of "ready".
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IncusBackend } from '../../../src/backends/incus/index';
import type { BaseRunOptions, BaseWorkflows } from '../../../src/bases/index';
import type { Sandbox } from '../../../src/core/sandbox';
import {
  backendExecutor,
  buildPolicy,
  provision,
  recheckEgress,
  type Executor,
} from '../../../src/guest/index';
import { generateKeyPair } from '../../../src/ssh/index';
import { waitBooted } from '../guest/helpers';

const run = promisify(execFile);

export interface LabWorkflows extends BaseWorkflows {
  /** Logs in over SSH as root with the user key (a fresh known_hosts file, so the clone's new key is accepted). */
  sshReady(name: string, timeoutMs?: number): Promise<void>;
  dispose(): void;
}

export function labWorkflows(backend: IncusBackend): LabWorkflows {
  const dir = mkdtempSync(join(tmpdir(), 'px-bases-'));
  const user = generateKeyPair('bases-test');
  const keyFile = join(dir, 'id');
  writeFileSync(keyFile, user.privateOpenSsh, { mode: 0o600 });
  const exec = (name: string): Executor => backendExecutor(backend, name);
  // The same provisioning for a plain create and a base: user, packages (none to download here), SSH, env, egress.
  const provisionOptions = {
    userPublicKeys: [user.publicOpenSsh],
    devtools: false,
    packages: [],
    egress: buildPolicy('unrestricted', []),
  };
  const ready = async (name: string, timeoutMs = 60_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let ip: string | undefined;
    for (;;) {
      ip = (await backend.get(name)).ipv4;
      if (ip) break;
      if (Date.now() > deadline) throw new Error(`${name} got no IPv4`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (;;) {
      try {
        await run(
          'ssh',
          [
            '-i',
            keyFile,
            '-o',
            'BatchMode=yes',
            '-o',
            'StrictHostKeyChecking=accept-new',
            '-o',
            `UserKnownHostsFile=${join(dir, `known_${name}_${Date.now()}`)}`,
            '-o',
            'ConnectTimeout=2',
            '-o',
            'LogLevel=ERROR',
            `root@${ip}`,
            'true',
          ],
          { timeout: 10_000 },
        );
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`ssh to ${name} (${ip}) not ready: ${String(err)}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  return {
    backend: async () => backend,
    async create(_serverId, request, options: BaseRunOptions) {
      options.progress?.('creating the container');
      await backend.create({ name: request.name, image: request.image, start: true });
      const e = exec(request.name);
      await waitBooted(e);
      await provision(e, provisionOptions, (event) => {
        if (event.type === 'step' && event.state === 'running')
          options.progress?.(`provisioning: ${event.title}`);
      });
      await ready(request.name);
    },
    async clone(_serverId, source, newName, options: BaseRunOptions): Promise<Sandbox> {
      options.progress?.('cloning');
      const made = await backend.clone({ sandbox: source.sandbox, checkpoint: source.checkpoint }, newName);
      await ready(newName);
      await recheckEgress(exec(newName));
      return made;
    },
    executor: async (_serverId, name) => exec(name),
    destroy: (_serverId, name) => backend.destroy(name),
    sshReady: ready,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
