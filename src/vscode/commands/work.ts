// Getting the agent's work back: Add Sandbox as Git Remote… (and its removal when the sandbox is destroyed) and
// Compare with Sandbox… (a file: a diff; a folder: the files that differ, each opened as a diff).
import { basename, join, relative, sep } from 'node:path';
import { statSync } from 'node:fs';
import * as vscode from 'vscode';
import { CancelledError, NotFoundError, ValidationError } from '../../core/errors';
import type { FolderChange } from '../../core/folder-compare';
import type { Sandbox } from '../../core/sandbox';
import type { SshTarget } from '../../ssh/index';
import { CommandIds } from '../commandIds';
import { loadGuest } from '../../workflows/lazy';
import { answersOf, resolveSshReady, type Answers } from '../pick';
import { withProgress } from '../progress';
import { writeSshEntry } from '../remoteSsh';
import { sandboxFileUri } from '../sandboxFiles';
import type { Services } from '../services';
import { registerCommand } from './register';

/** Remotes added here, so destroying their sandbox removes them. */
const REMOTES_KEY = 'pixels.gitRemotes';

interface AddedRemote {
  serverId: string;
  name: string;
  repo: string;
  remote: string;
  url: string;
}

const loadGit = () => import('../../core/git-remote');

/** A local folder: the answer, the only workspace folder, or one picked. */
async function localFolder(a: Answers): Promise<string> {
  if (typeof a.folder === 'string') return a.folder;
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  if (folders.length === 0) throw new ValidationError('Open a folder (a git repository) first.');
  if (folders.length === 1) return folders[0].uri.fsPath;
  const picked = await vscode.window.showWorkspaceFolderPick({
    placeHolder: 'Add the remote to which repository?',
  });
  if (!picked) throw new CancelledError();
  return picked.uri.fsPath;
}

/** The sandbox's repository: the answer, else one found under its home (the one named like the local repo first). */
async function sandboxRepo(
  services: Services,
  sandbox: Sandbox,
  target: SshTarget,
  localRepo: string,
  a: Answers,
): Promise<string> {
  if (typeof a.path === 'string') return a.path;
  const guest = await loadGuest();
  const r = await (await services.ssh.pool()).exec(target, guest.FIND_REPOS_SCRIPT, { timeoutMs: 30_000 });
  const found = guest.parseRepoList(r.stdout.toString('utf8'));
  const name = basename(localRepo);
  found.sort((x, y) => Number(basename(y) === name) - Number(basename(x) === name));
  const other = '$(edit) Another path…';
  const picked = await vscode.window.showQuickPick(
    [
      ...found.map((p) => ({
        label: p,
        description: basename(p) === name ? 'same name as this repository' : '',
      })),
      { label: other, description: 'type the repository path in the sandbox' },
    ],
    {
      title: `Repository in "${sandbox.name}"`,
      placeHolder: found.length
        ? 'The repository the agent works in'
        : 'No repository found under the home folder',
      ignoreFocusOut: true,
    },
  );
  if (!picked) throw new CancelledError();
  if (picked.label !== other) return picked.label;
  const typed = await vscode.window.showInputBox({
    title: `Repository in "${sandbox.name}"`,
    prompt: 'Absolute path of the repository inside the sandbox',
    value: `/home/${services.ssh.user}/${name}`,
    validateInput: (v) => (v.startsWith('/') ? undefined : 'Enter an absolute path, starting with /.'),
    ignoreFocusOut: true,
  });
  if (typed === undefined) throw new CancelledError();
  return typed;
}

async function addGitRemote(services: Services, arg: unknown): Promise<AddedRemote> {
  const a = answersOf(arg);
  const git = await loadGit();
  const repo = await git.repositoryRoot(await localFolder(a));
  const { serverId, sandbox, target } = await resolveSshReady(
    services,
    a,
    'Add which sandbox as a git remote?',
  );
  const path = await sandboxRepo(services, sandbox, target, repo, a);
  const check = await (
    await services.ssh.pool()
  ).exec(target, ['git', '-C', path, 'rev-parse', '--git-dir'], {
    timeoutMs: 20_000,
  });
  if (check.exitCode !== 0)
    throw new NotFoundError(
      `${path} in "${sandbox.name}" is not a git repository: ${check.stderr.toString('utf8').trim()}`,
    );
  const alias = await writeSshEntry(services, serverId, sandbox);
  const remote = git.gitRemoteName(sandbox.name);
  const url = git.gitRemoteUrl(alias, path);
  const how = await git.setRemote(repo, remote, url);
  const added: AddedRemote = { serverId, name: sandbox.name, repo, remote, url };
  const all = (services.context.globalState.get<AddedRemote[]>(REMOTES_KEY) ?? []).filter(
    (r) => !(r.repo === repo && r.remote === remote),
  );
  await services.context.globalState.update(REMOTES_KEY, [...all, added]);
  services.log.info(`git remote ${remote} ${how} in ${repo}: ${url}`);
  void vscode.window.showInformationMessage(
    `Remote "${remote}" ${how === 'unchanged' ? 'is already' : how === 'added' ? 'added,' : 'updated,'} ${url}. "git fetch ${remote}" brings the sandbox's branches; it is removed when the sandbox is destroyed.`,
  );
  return added;
}

/** Destroyed sandbox: the remotes added for it go (only those still pointing at it). Never throws. */
export async function removeGitRemotes(
  services: Services,
  serverId: string,
  name: string,
): Promise<string[]> {
  try {
    return await removeRemotesOf(services, serverId, name);
  } catch (err) {
    services.log.warn(`git remotes of ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return [];
  }
}

async function removeRemotesOf(services: Services, serverId: string, name: string): Promise<string[]> {
  const all = services.context.globalState.get<AddedRemote[]>(REMOTES_KEY) ?? [];
  const mine = all.filter((r) => r.serverId === serverId && r.name === name);
  if (mine.length === 0) return [];
  const git = await loadGit();
  const removed: string[] = [];
  for (const r of mine) {
    try {
      if (await git.removeRemoteIf(r.repo, r.remote, r.url)) removed.push(`${r.repo}: ${r.remote}`);
    } catch (err) {
      services.log.warn(`could not remove git remote ${r.remote} from ${r.repo}: ${String(err)}`);
    }
  }
  await services.context.globalState.update(
    REMOTES_KEY,
    all.filter((r) => !mine.includes(r)),
  );
  for (const r of removed) services.log.info(`removed git remote ${r} (sandbox ${name} destroyed)`);
  return removed;
}

/** The local file or folder to compare: the answer, the explorer's selection, or the active editor's file. */
function localResource(arg: unknown, a: Answers): string {
  if (typeof a.local === 'string') return a.local;
  if (arg instanceof vscode.Uri && arg.scheme === 'file') return arg.fsPath;
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.scheme === 'file') return active.fsPath;
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 1 && folders[0].uri.scheme === 'file') return folders[0].uri.fsPath;
  throw new ValidationError(
    'Pick a file or folder in the Explorer (or open a file) to compare with a sandbox.',
  );
}

/** The sandbox folder matching a local root: the sandbox's git remote path, a remembered answer, or asked. */
async function sandboxRootFor(
  services: Services,
  serverId: string,
  sandbox: Sandbox,
  localRoot: string,
  a: Answers,
): Promise<string> {
  if (typeof a.path === 'string') return a.path;
  const git = await loadGit();
  const alias = services.ssh.alias(serverId, sandbox.name);
  const url = await git.remoteUrl(localRoot, git.gitRemoteName(sandbox.name)).catch(() => undefined);
  if (url?.startsWith(`ssh://${alias}/`)) return url.slice(`ssh://${alias}`.length);
  const key = `pixels.compareRoot:${serverId}/${sandbox.name}:${localRoot}`;
  const remembered = services.context.workspaceState.get<string>(key);
  const typed = await vscode.window.showInputBox({
    title: `Compare with "${sandbox.name}"`,
    prompt: `The folder in the sandbox that matches ${localRoot}`,
    value: remembered ?? `/home/${services.ssh.user}/${basename(localRoot)}`,
    validateInput: (v) => (v.startsWith('/') ? undefined : 'Enter an absolute path, starting with /.'),
    ignoreFocusOut: true,
  });
  if (typed === undefined) throw new CancelledError();
  await services.context.workspaceState.update(key, typed);
  return typed;
}

function joinSandbox(root: string, rel: string): string {
  return rel ? `${root.replace(/\/+$/, '')}/${rel}` : root;
}

export interface CompareResult {
  kind: 'file' | 'folder';
  sandboxPath: string;
  changes?: FolderChange[];
  opened?: string;
}

async function openDiff(
  serverId: string,
  sandbox: Sandbox,
  localPath: string,
  sandboxPath: string,
  change: FolderChange['change'] | 'file',
): Promise<void> {
  const remote = sandboxFileUri(serverId, sandbox.name, sandboxPath);
  const local = vscode.Uri.file(localPath);
  const title = `${basename(localPath)} (${sandbox.name} ↔ local)`;
  if (change === 'added in sandbox') await vscode.window.showTextDocument(remote, { preview: true });
  else if (change === 'only local') await vscode.window.showTextDocument(local, { preview: true });
  else await vscode.commands.executeCommand('vscode.diff', remote, local, title, { preview: true });
}

async function compareWithSandbox(services: Services, arg: unknown): Promise<CompareResult> {
  const a = answersOf(arg instanceof vscode.Uri ? undefined : arg);
  const local = localResource(arg, a);
  const { serverId, sandbox, target } = await resolveSshReady(services, a, 'Compare with which sandbox?');
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(local));
  const git = await loadGit();
  const localRoot =
    typeof a.root === 'string'
      ? a.root
      : (folder?.uri.fsPath ??
        (await git.repositoryRoot(statSync(local).isDirectory() ? local : join(local, '..'))));
  const rel = relative(localRoot, local).split(sep).join('/');
  if (rel.startsWith('..')) throw new ValidationError(`${local} is not under ${localRoot}.`);
  const sandboxPath = joinSandbox(await sandboxRootFor(services, serverId, sandbox, localRoot, a), rel);
  if (!statSync(local).isDirectory()) {
    await openDiff(serverId, sandbox, local, sandboxPath, 'file');
    return { kind: 'file', sandboxPath };
  }
  const guest = await loadGuest();
  const compare = await import('../../core/folder-compare');
  const changes = await withProgress(
    `Comparing ${basename(local)} with "${sandbox.name}"`,
    true,
    async () => {
      const r = await (
        await services.ssh.pool()
      ).exec(target, guest.fileHashesScript(sandboxPath), {
        timeoutMs: 120_000,
        maxBufferBytes: 64 * 1024 * 1024,
      });
      if (r.exitCode !== 0)
        throw new ValidationError(
          `Could not read ${sandboxPath} in "${sandbox.name}": ${r.stderr.toString('utf8').trim() || `exit code ${r.exitCode}`}`,
        );
      const remote = guest.parseFileHashes(r.stdout.toString('utf8'));
      return compare.compareHashes(await compare.localFileHashes(local, guest.MAX_COMPARED_FILES), remote);
    },
  );
  if (changes.length === 0) {
    void vscode.window.showInformationMessage(`${basename(local)} is the same in "${sandbox.name}".`);
    return { kind: 'folder', sandboxPath, changes };
  }
  let pick = typeof a.pick === 'string' ? changes.find((c) => c.path === a.pick) : undefined;
  if (typeof a.pick === 'string' && !pick) throw new NotFoundError(`${a.pick} does not differ.`);
  if (!pick && a.pick !== false) {
    const picked = await vscode.window.showQuickPick(
      changes.map((c) => ({ label: c.path, description: c.change, change: c })),
      {
        title: `${changes.length} file${changes.length === 1 ? '' : 's'} differ between ${basename(local)} and "${sandbox.name}"`,
        placeHolder: 'Open which diff?',
        ignoreFocusOut: true,
      },
    );
    if (!picked) return { kind: 'folder', sandboxPath, changes };
    pick = picked.change;
  }
  if (pick)
    await openDiff(
      serverId,
      sandbox,
      join(local, pick.path),
      joinSandbox(sandboxPath, pick.path),
      pick.change,
    );
  return { kind: 'folder', sandboxPath, changes, ...(pick ? { opened: pick.path } : {}) };
}

export function registerWorkCommands(services: Services): void {
  registerCommand(services, CommandIds.addGitRemote, 'Add sandbox as git remote', (arg) =>
    addGitRemote(services, arg),
  );
  registerCommand(services, CommandIds.compareWithSandbox, 'Compare with sandbox', (arg) =>
    compareWithSandbox(services, arg),
  );
}
