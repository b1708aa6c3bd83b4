// Agent sessions and getting the work back, against a real container of the Incus lab (test/lab/up.sh; its image
// has tmux and git): Start Agent runs a command in a tmux session with the [env] session variables (not visible in
// `ps` inside the sandbox); the session shows under its sandbox (one listing call per sandbox); closing its terminal
// or dropping every SSH connection (what closing the window does) only detaches it, and Attach finds it with its
// output; Stop Session ends it; a persistent Open Terminal comes back to the same shell. Add Sandbox as Git Remote
// lets `git fetch` bring a commit made inside the sandbox; Compare with Sandbox diffs a file and lists a folder's
// changed files; destroying the sandbox removes the remote. Fails loudly when the lab is not up.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { createIncusBackend, type IncusBackend } from '../../../src/backends/incus/index';
import type { Sandbox } from '../../../src/core/sandbox';
import { backendExecutor, type Executor } from '../../../src/guest/index';
import type { SessionNode } from '../../../src/vscode/tree';
import type { Lab } from '../../lab/lab';
import { pixelsApi, sandboxRows, sleep, waitFor } from './helpers';
import { createOnLab, setUpLabSuite, type LabSuite } from './labSuite';

const SECRET = `s3cr3t-${randomBytes(4).toString('hex')} it's "quoted" $(id)`;

suite('agent sessions and getting the work back (Incus lab)', function () {
  this.timeout(400_000);
  let env: LabSuite;
  let lab: Lab;
  let userConfig: string;
  let check: IncusBackend;
  let root: Executor;
  const prefix = `s${randomBytes(3).toString('hex')}`;
  const name = `${prefix}-agent`;
  let sandbox: Sandbox;

  /** A command as the pixel user inside the sandbox (through Incus, not through the extension). */
  const asPixel = async (command: string) => {
    const r = await root(`su - pixel -c ${shq(command)}`, { timeoutMs: 30_000 });
    return r;
  };
  const pane = async (session: string) =>
    (await asPixel(`tmux -L pixels capture-pane -p -S -100 -t ${session}:`)).output;
  const sessionRows = async (): Promise<SessionNode[]> => {
    const api = await pixelsApi();
    const row = (await sandboxRows(api, 'lab')).get(name);
    assert.ok(row, 'the sandbox row');
    return (await api.treeChildren(row)).filter((n): n is SessionNode => n.type === 'session');
  };

  suiteSetup(async () => {
    env = await setUpLabSuite(prefix, {
      userSshConfig: true,
      pixelsToml: `[env]\nPX_AGENT_TOKEN = { value = ${JSON.stringify(SECRET)}, session_only = true }\n`,
    });
    ({ lab, userConfig } = env);
    assert.deepEqual((await pixelsApi()).configProblems(), []);
    sandbox = await createOnLab(lab, name, { provision: true, egress: 'unrestricted' });
    check = createIncusBackend({ serverId: 'check', socketPath: lab.socket });
    root = backendExecutor(check, name);
  });

  suiteTeardown(async () => {
    for (const t of vscode.window.terminals) t.dispose();
    check?.dispose();
    await env?.teardown();
  });

  test('an agent session outlives its terminal and every connection, and is attached again', async () => {
    const api = await pixelsApi();
    // The "agent": prints its token's hash (the token itself is nowhere on a command line), then echoes input.
    const agent =
      'printf %s "$PX_AGENT_TOKEN" | sha256sum | cut -c1-64 | sed "s/^/token:/"; while read -r line; do echo "got:$line"; done';
    const tokenLine = `token:${createHash('sha256').update(SECRET).digest('hex')}`;
    const started = (await vscode.commands.executeCommand('pixels.startAgent', {
      server: 'lab',
      name,
      command: agent,
      agent: 'Echo agent',
      session: 'agent-1',
      cwd: '~',
    })) as { session: string; terminal?: vscode.Terminal } | undefined;
    assert.ok(started?.terminal, `Start Agent failed: ${api.lastError()?.message}`);
    await waitFor('the agent to start', async () => (await pane('agent-1')).includes('token:'), 20_000);
    assert.ok((await pane('agent-1')).includes(tokenLine), 'the session variable reached the agent intact');
    const ps = await root('ps -eo args', { timeoutMs: 20_000 });
    assert.ok(!ps.output.includes('s3cr3t-'), `the token shows in ps:\n${ps.output}`);
    const leftover = await asPixel('ls -A ~/.pixels/sessions');
    assert.equal(leftover.output.trim(), 'tmux.conf', 'the env file was read and deleted');

    // The tree: the session under its sandbox, running, attached once.
    const rows = await waitFor('the attached session row', async () => {
      const r = await sessionRows();
      return r[0]?.session.attached === 1 ? r : undefined;
    });
    assert.deepEqual(
      rows.map((r) => [r.session.name, r.session.running, r.session.kind, r.session.command]),
      [['agent-1', true, 'agent', 'Echo agent']],
    );
    const item = api.treeItem(rows[0]);
    assert.equal(item.contextValue, 'session+running');
    assert.match(item.description ?? '', /^running · Echo agent · started /);

    // Typing in the terminal reaches the agent.
    started.terminal.sendText('hello-1');
    await waitFor('the first line', async () => (await pane('agent-1')).includes('got:hello-1'), 20_000);

    // Closing the terminal only detaches.
    const closed = new Promise<void>((resolve) => {
      const sub = vscode.window.onDidCloseTerminal((t) => {
        if (t === started.terminal) {
          sub.dispose();
          resolve();
        }
      });
    });
    started.terminal.dispose();
    await closed;
    const detached = await waitFor('the session detached, still running', async () => {
      const r = await sessionRows();
      return r[0]?.session.attached === 0 && r[0].session.running ? r : undefined;
    });
    assert.equal(detached.length, 1);
    await vscode.commands.executeCommand('pixels.attachSession', { server: 'lab', name, session: 'nope' });
    assert.match(api.lastError()?.message ?? '', /no session "nope"/);

    // Attach again from the row: the same program, its output kept; then drop every SSH connection of the pixel
    // user (what a closed window or a dead extension host does): still running.
    const again = (await vscode.commands.executeCommand('pixels.attachSession', detached[0])) as
      vscode.Terminal | undefined;
    assert.ok(again, api.lastError()?.message);
    await sleep(1500);
    again.sendText('hello-2');
    await waitFor('the second line', async () => (await pane('agent-1')).includes('got:hello-2'), 20_000);
    assert.match(await pane('agent-1'), /token:[\s\S]*got:hello-1[\s\S]*got:hello-2/);
    const kill = await root("pkill -KILL -f '^sshd: pixel' ; sleep 1; pgrep -fa '^sshd: pixel' || true", {
      timeoutMs: 20_000,
    });
    assert.doesNotMatch(kill.output, /sshd: pixel/, 'no connection of pixel is left');
    await waitFor('the session running with nobody attached', async () => {
      const list = await asPixel(
        "tmux -L pixels list-sessions -F '#{session_name} #{session_attached} #{pane_dead}'",
      );
      return list.output.trim() === 'agent-1 0 0' || undefined;
    });
    again.dispose();
    // A fresh connection (the pool notices the dead one) attaches and sees everything.
    const third = (await waitFor(
      'attach after the connections dropped',
      async () => {
        const t = (await vscode.commands.executeCommand('pixels.attachSession', {
          server: 'lab',
          name,
          session: 'agent-1',
        })) as vscode.Terminal | undefined;
        return t;
      },
      30_000,
    )) as vscode.Terminal;
    await sleep(1500);
    third.sendText('hello-3');
    await waitFor('the third line', async () => (await pane('agent-1')).includes('got:hello-3'), 20_000);
    third.dispose();
  });

  test('one listing call per sandbox, however many sessions; exited and stopped sessions', async () => {
    const api = await pixelsApi();
    const r = (await vscode.commands.executeCommand('pixels.startAgent', {
      server: 'lab',
      name,
      command: 'echo done; exit 3',
      kind: 'command',
      session: 'short',
      cwd: '/tmp',
      attach: false,
    })) as { session: string } | undefined;
    assert.equal(r?.session, 'short', api.lastError()?.message);
    const rows = await waitFor(
      'the exited session',
      async () => {
        const list = await sessionRows();
        // A pane whose program just ended may not have its exit status yet: wait for the code.
        return list.find((n) => n.session.name === 'short' && n.session.exitCode !== undefined)
          ? list
          : undefined;
      },
      30_000,
    );
    assert.deepEqual(
      rows.map((n) => [n.session.name, n.session.running, n.session.exitCode]),
      [
        ['agent-1', true, undefined],
        ['short', false, 3],
      ],
    );
    // One look at the tree (a refresh, then its rows) asks the sandbox once for both sessions.
    await sleep(500);
    const before = api.sessionListCalls();
    await sessionRows();
    await waitFor('the listing', () => api.sessionListCalls() > before || undefined);
    await sleep(1000);
    assert.equal(api.sessionListCalls() - before, 1, 'listing calls for 2 sessions in one sandbox');
    assert.equal(api.treeItem(rows[1]).contextValue, 'session+exited');

    for (const session of ['short', 'agent-1'])
      assert.equal(
        await vscode.commands.executeCommand('pixels.stopSession', {
          server: 'lab',
          name,
          session,
          confirm: true,
        }),
        true,
        api.lastError()?.message,
      );
    assert.deepEqual(await sessionRows(), []);
    assert.equal((await asPixel('tmux -L pixels ls 2>&1 || true')).output.includes('agent-1'), false);
  });

  test('a persistent Open Terminal comes back to the same shell', async () => {
    const api = await pixelsApi();
    const first = (await vscode.commands.executeCommand('pixels.openTerminal', {
      server: 'lab',
      name,
      persistent: true,
    })) as vscode.Terminal | undefined;
    assert.ok(first, api.lastError()?.message);
    await sleep(2000);
    first.sendText('export PX_MARK=kept-$((6*7)); echo "mark:$PX_MARK token:${#PX_AGENT_TOKEN}"');
    await waitFor('the mark', async () => (await pane('console')).includes('mark:kept-42'), 20_000);
    assert.match(
      await pane('console'),
      new RegExp(`token:${SECRET.length}\\b`),
      'the session variable is there',
    );
    first.dispose();
    await sleep(1000);
    const second = (await vscode.commands.executeCommand('pixels.openTerminal', {
      server: 'lab',
      name,
      persistent: true,
    })) as vscode.Terminal | undefined;
    assert.ok(second, api.lastError()?.message);
    await sleep(1500);
    second.sendText('echo "again:$PX_MARK"');
    await waitFor('the same shell', async () => (await pane('console')).includes('again:kept-42'), 20_000);
    second.sendText('exit');
    await waitFor(
      'the terminal session to end with its shell',
      async () => ((await sessionRows()).some((n) => n.session.name === 'console') ? undefined : true),
      30_000,
    );
    second.dispose();
  });

  test('git fetch from the sandbox remote brings a commit made inside; Compare shows the differences', async () => {
    const api = await pixelsApi();
    const made = await asPixel(
      [
        'set -e',
        'git init -q -b main ~/proj',
        'cd ~/proj',
        'git config user.email agent@sandbox.invalid && git config user.name Agent',
        'printf "one\\n" > a.txt && printf "same\\n" > same.txt && git add . && git commit -qm first',
        'git checkout -q -b agent-work && printf "one\\nchanged by the agent\\n" > a.txt',
        'printf "new\\n" > b.txt && git add . && git commit -qm "agent commit"',
        'git rev-parse HEAD',
      ].join('\n'),
    );
    assert.equal(made.exitCode, 0, made.output);
    const agentHead = made.output.trim().split('\n').pop();
    const local = join(env.dir, 'proj');
    mkdirSync(local);
    execFileSync('git', ['init', '-q', '-b', 'main', local]);
    writeFileSync(join(local, 'a.txt'), 'one\n');
    writeFileSync(join(local, 'same.txt'), 'same\n');
    writeFileSync(join(local, 'mine.txt'), 'local only\n');

    const added = (await vscode.commands.executeCommand('pixels.addGitRemote', {
      server: 'lab',
      name,
      folder: local,
      path: '/home/pixel/proj',
    })) as { remote: string; url: string } | undefined;
    assert.ok(added, api.lastError()?.message);
    assert.equal(added.remote, `px-${name}`);
    assert.equal(added.url, `ssh://px-${name}.lab/home/pixel/proj`);
    const fetch = spawnSync('git', ['fetch', '-q', added.remote], {
      cwd: local,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, GIT_SSH_COMMAND: `ssh -F ${userConfig} -o BatchMode=yes` },
    });
    assert.equal(fetch.status, 0, fetch.stderr);
    const fetched = execFileSync('git', ['rev-parse', `${added.remote}/agent-work`], {
      cwd: local,
      encoding: 'utf8',
    });
    assert.equal(fetched.trim(), agentHead, 'the commit made in the sandbox came back');

    // A file: a diff whose left side is the sandbox's file, read-only.
    const file = (await vscode.commands.executeCommand('pixels.compareWithSandbox', {
      server: 'lab',
      name,
      local: join(local, 'a.txt'),
      root: local,
    })) as { kind: string; sandboxPath: string } | undefined;
    assert.ok(file, api.lastError()?.message);
    assert.deepEqual(
      file,
      { kind: 'file', sandboxPath: '/home/pixel/proj/a.txt' },
      'the path came from the remote',
    );
    const tab = await waitFor('the diff tab', () => {
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return input instanceof vscode.TabInputTextDiff ? input : undefined;
    });
    assert.equal(tab.original.scheme, 'pixels-sandbox');
    assert.equal(tab.modified.fsPath, join(local, 'a.txt'));
    const left = await vscode.workspace.openTextDocument(tab.original);
    assert.equal(left.getText(), 'one\nchanged by the agent\n');

    // A folder: the files that differ; the picked one opens as a diff.
    const folder = (await vscode.commands.executeCommand('pixels.compareWithSandbox', {
      server: 'lab',
      name,
      local,
      root: local,
      pick: 'a.txt',
    })) as { kind: string; changes: { path: string; change: string }[]; opened?: string } | undefined;
    assert.ok(folder, api.lastError()?.message);
    assert.deepEqual(folder.changes, [
      { path: 'a.txt', change: 'modified' },
      { path: 'b.txt', change: 'added in sandbox' },
      { path: 'mine.txt', change: 'only local' },
    ]);
    assert.equal(folder.opened, 'a.txt');

    // Destroying the sandbox removes the remote it was added for.
    assert.equal(
      await vscode.commands.executeCommand('pixels.destroy', { server: 'lab', name, confirm: true }),
      true,
      api.lastError()?.message,
    );
    const remotes = execFileSync('git', ['remote'], { cwd: local, encoding: 'utf8' });
    assert.equal(remotes.trim(), '', 'the remote is gone');
    assert.ok(sandbox);
  });
});

function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
