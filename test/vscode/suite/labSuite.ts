// The Incus lab as the one server of an editor suite, set up the same way everywhere: provisioning made hermetic
// (the lab has no internet: no packages beyond the lab image's, no tools to download), the extension's SSH files
// in a temporary folder, and optionally a user SSH config the product must leave alone and a pixels TOML config.
// Everything it sets is put back by teardown(), and the suite's sandboxes are removed.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { Sandbox } from '../../../src/core/sandbox';
import { removeTestInstances } from '../../integration/incus/helpers';
import { requireLab, type Lab } from '../../lab/lab';
import { pixelsApi, setServers, showView } from './helpers';

export interface LabSuiteOptions {
  /** The extension logs in as root (PIXELS_SSH_USER); provisioning authorises root too. */
  root?: boolean;
  /** Write a user SSH config ("# my own settings") and point pixels.ssh.configFile at it. */
  userSshConfig?: boolean;
  /** The pixels CLI config (config.toml under XDG_CONFIG_HOME). */
  pixelsToml?: string;
}

export interface LabSuite {
  lab: Lab;
  /** The suite's temporary folder. */
  dir: string;
  /** PIXELS_SSH_DIR: the extension's SSH config, known_hosts and keys. */
  sshDir: string;
  /** The user SSH config, with `userSshConfig`. */
  userConfig: string;
  teardown(): Promise<void>;
}

const HERMETIC = ['provision.packages', 'provision.tools'] as const;
const ENV = ['XDG_CONFIG_HOME', 'PIXELS_SSH_DIR', 'PIXELS_SSH_USER'] as const;

/** Sets the suite up; `prefix` names its sandboxes (removed by teardown). */
export async function setUpLabSuite(prefix: string, options: LabSuiteOptions = {}): Promise<LabSuite> {
  const lab = await requireLab();
  const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
  const dir = mkdtempSync(join(tmpdir(), `pixels-${prefix}-`));
  const sshDir = join(dir, 'ssh');
  const userConfig = join(dir, 'user-config');
  process.env.PIXELS_SSH_DIR = sshDir;
  if (options.root) process.env.PIXELS_SSH_USER = 'root';
  if (options.pixelsToml !== undefined) {
    mkdirSync(join(dir, 'xdg', 'pixels'), { recursive: true });
    writeFileSync(join(dir, 'xdg', 'pixels', 'config.toml'), options.pixelsToml);
    process.env.XDG_CONFIG_HOME = join(dir, 'xdg');
  }
  const c = vscode.workspace.getConfiguration('pixels');
  const settings: string[] = [...HERMETIC];
  for (const key of HERMETIC) await c.update(key, [], vscode.ConfigurationTarget.Global);
  if (options.userSshConfig) {
    writeFileSync(userConfig, '# my own settings\n');
    await c.update('ssh.configFile', userConfig, vscode.ConfigurationTarget.Global);
    settings.push('ssh.configFile');
  }
  await setServers([{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket } as never]);
  await showView();
  return {
    lab,
    dir,
    sshDir,
    userConfig,
    async teardown() {
      await setServers([]);
      const config = vscode.workspace.getConfiguration('pixels');
      for (const key of settings) await config.update(key, undefined, vscode.ConfigurationTarget.Global);
      await removeTestInstances(lab, prefix);
      for (const k of ENV) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Create Sandbox on the lab (1 CPU, 512 MiB) through the command; fails the test with the extension's error. */
export async function createOnLab(
  lab: Lab,
  name: string,
  options: { provision: boolean; egress: string },
): Promise<Sandbox> {
  const made = (await vscode.commands.executeCommand('pixels.createSandbox', {
    server: 'lab',
    name,
    image: lab.image,
    cpu: '1',
    memoryMiB: 512,
    ...options,
  })) as Sandbox | undefined;
  assert.ok(made, `create failed: ${(await pixelsApi()).lastError()?.message}`);
  return made;
}
