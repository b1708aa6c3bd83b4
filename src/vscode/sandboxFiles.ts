// Read-only documents of files inside a sandbox (`pixels-sandbox://<server>/<sandbox>/<absolute path>`), read over
// SSH with one `cat`: the sandbox side of Compare with Sandbox.
import * as vscode from 'vscode';
import { NotFoundError, ValidationError } from '../core/errors';
import { loadSsh } from '../workflows/lazy';
import type { Services } from './services';

export const SANDBOX_SCHEME = 'pixels-sandbox';
/** Larger files are not shown (a diff of them would not be read anyway). */
const MAX_BYTES = 10 * 1024 * 1024;

export function sandboxFileUri(serverId: string, name: string, path: string): vscode.Uri {
  if (!path.startsWith('/')) throw new ValidationError(`"${path}" is not an absolute path in the sandbox.`);
  return vscode.Uri.from({ scheme: SANDBOX_SCHEME, authority: serverId, path: `/${name}${path}` });
}

function parse(uri: vscode.Uri): { serverId: string; name: string; path: string } {
  const m = /^\/([^/]+)(\/.*)$/.exec(uri.path);
  if (!m) throw new ValidationError(`Not a sandbox file: ${uri.toString()}`);
  return { serverId: uri.authority, name: m[1], path: m[2] };
}

export class SandboxFileProvider implements vscode.TextDocumentContentProvider {
  constructor(private readonly services: Services) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const { serverId, name, path } = parse(uri);
    const backend = await this.services.registry.backend(serverId);
    const target = await this.services.ssh.target(serverId, await backend.get(name));
    const ssh = await loadSsh();
    const pool = await this.services.ssh.pool();
    const r = await pool.exec(target, ssh.quoteCommand(['cat', '--', path]), {
      maxBufferBytes: MAX_BYTES,
      timeoutMs: 60_000,
    });
    if (r.exitCode !== 0) {
      const why = r.stderr.toString('utf8').trim();
      if (/No such file/.test(why)) throw new NotFoundError(`${path} does not exist in "${name}".`);
      throw new ValidationError(`Cannot read ${path} in "${name}": ${why || `exit code ${r.exitCode}`}`);
    }
    if (r.stdoutTruncated) throw new ValidationError(`${path} in "${name}" is larger than 10 MiB.`);
    return r.stdout.toString('utf8');
  }
}

export function registerSandboxFiles(services: Services): void {
  services.context.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(SANDBOX_SCHEME, new SandboxFileProvider(services)),
  );
}
