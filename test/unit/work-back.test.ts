// Getting the work back, vscode-free: the git remote's name and URL, adding / re-pointing / removing it in a real
// local repository, the sandbox listings (repositories, file hashes) parsed, and the folder comparison.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { compareHashes, localFileHashes } from '../../src/core/folder-compare';
import {
  gitRemoteName,
  gitRemoteUrl,
  remoteUrl,
  removeRemoteIf,
  repositoryRoot,
  setRemote,
} from '../../src/core/git-remote';
import { fileHashesScript, parseFileHashes, parseRepoList } from '../../src/guest/repos';

const dir = mkdtempSync(join(tmpdir(), 'pixels-work-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('git remote of a sandbox', () => {
  it('is px-<name> over the SSH alias, with an absolute path', () => {
    assert.equal(gitRemoteName('agent-1'), 'px-agent-1');
    assert.equal(gitRemoteUrl('px-a.lab', '/home/pixel/repo/'), 'ssh://px-a.lab/home/pixel/repo');
    assert.throws(() => gitRemoteUrl('px-a.lab', 'repo'), /not an absolute path/);
    assert.throws(() => gitRemoteUrl('px-a.lab', '/home/pixel/my repo'), /spaces/);
  });

  it('is added, re-pointed, and removed only while it still points at the sandbox', async () => {
    const repo = join(dir, 'repo');
    mkdirSync(join(repo, 'sub'), { recursive: true });
    execFileSync('git', ['init', '-q', repo]);
    assert.equal(await repositoryRoot(join(repo, 'sub')), repo);
    await assert.rejects(repositoryRoot(dir), /not inside a git repository/);
    const url = 'ssh://px-a.lab/home/pixel/repo';
    assert.equal(await setRemote(repo, 'px-a', url), 'added');
    assert.equal(await setRemote(repo, 'px-a', url), 'unchanged');
    assert.equal(await setRemote(repo, 'px-a', `${url}2`), 'updated');
    assert.equal(await removeRemoteIf(repo, 'px-a', url), false, 'the user pointed it elsewhere: kept');
    assert.equal(await remoteUrl(repo, 'px-a'), `${url}2`);
    assert.equal(await removeRemoteIf(repo, 'px-a', `${url}2`), true);
    assert.equal(await remoteUrl(repo, 'px-a'), undefined);
  });
});

describe('sandbox listings', () => {
  it('parses repositories and NUL-separated hashes, any file name', () => {
    assert.deepEqual(parseRepoList('/home/pixel/a\n/home/pixel/b c\nfind: warning\n'), [
      '/home/pixel/a',
      '/home/pixel/b c',
    ]);
    const h = 'a'.repeat(64);
    const parsed = parseFileHashes(`${h}  src/x.ts\0${h}  odd\nname  \0`);
    assert.deepEqual([...parsed.keys()], ['src/x.ts', 'odd\nname  ']);
    assert.throws(() => parseFileHashes('garbage\0'), /Unexpected hash line/);
    assert.throws(() => fileHashesScript('rel'), /absolute/);
  });

  it('the hash script and the local hashing agree on a real folder, .git left out', async () => {
    const root = join(dir, 'tree');
    mkdirSync(join(root, 'a', '.git'), { recursive: true });
    mkdirSync(join(root, '.git'), { recursive: true });
    writeFileSync(join(root, 'one.txt'), 'one\n');
    writeFileSync(join(root, 'a', "it's two.txt"), 'two\n');
    writeFileSync(join(root, '.git', 'HEAD'), 'ref\n');
    writeFileSync(join(root, 'a', '.git', 'x'), 'x\n');
    const remote = parseFileHashes(execFileSync('bash', ['-c', fileHashesScript(root)]).toString('utf8'));
    const local = await localFileHashes(root, 100);
    assert.deepEqual([...remote.keys()].sort(), ["a/it's two.txt", 'one.txt']);
    assert.deepEqual(local, remote);
    await assert.rejects(localFileHashes(root, 1), /more than 1 files/);
  });

  it('lists modified, sandbox-only and local-only files, sorted', () => {
    const local = new Map([
      ['same', '1'],
      ['mod', '2'],
      ['mine', '3'],
    ]);
    const sandbox = new Map([
      ['same', '1'],
      ['mod', '9'],
      ['new', '4'],
    ]);
    assert.deepEqual(compareHashes(local, sandbox), [
      { path: 'mine', change: 'only local' },
      { path: 'mod', change: 'modified' },
      { path: 'new', change: 'added in sandbox' },
    ]);
  });
});
