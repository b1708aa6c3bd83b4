// Persistent sessions: names, the listing parser, and the generated scripts run for real against this machine's
// tmux (scripts/setup.sh installs it) in a private HOME and TMUX_TMPDIR: a session starts detached, gets its
// session variables from a 0600 file it deletes (never on a command line), outlives its start, reports its exit
// code, and stops.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  EXIT_NO_TMUX,
  EXIT_SESSION_EXISTS,
  LIST_SESSIONS_SCRIPT,
  WATCH_SESSIONS_COMMAND,
  attachSessionCommand,
  envFileContent,
  parseSessionList,
  sessionNameProblem,
  startSessionScript,
  stopSessionCommand,
  suggestSessionName,
} from '../../src/guest/sessions';

describe('session names', () => {
  it('accepts tmux-safe names and refuses the rest', () => {
    for (const ok of ['claude', 'codex-2', 'a_b', 'X'.repeat(64)])
      assert.equal(sessionNameProblem(ok), undefined);
    for (const bad of ['', 'a.b', 'a:b', 'a b', "a'b", 'x'.repeat(65), 'é'])
      assert.match(sessionNameProblem(bad) ?? '', /1 to 64 letters/);
    assert.throws(() => stopSessionCommand('a;rm -rf /'), /1 to 64 letters/);
    assert.throws(() => attachSessionCommand('a b'), /1 to 64 letters/);
  });

  it('suggests a free name from a label', () => {
    assert.equal(suggestSessionName('Claude Code', []), 'claude-code');
    assert.equal(suggestSessionName('claude', ['claude', 'claude-2']), 'claude-3');
    assert.equal(suggestSessionName('!!!', []), 'session');
  });
});

describe('session list parsing', () => {
  it('reads running and exited sessions, sorted by start', () => {
    const out = [
      'pixels-sessions: ok',
      'b|1700000100|1|7|0|agent||codex --full-auto | tee log',
      'a|1700000000|0||2|terminal||login shell',
      'c|1700000200|1||0||5|',
      // Its program has ended (the exit code is set) but the pane is not dead yet.
      'd|1700000300|0||1|agent|0|claude',
      '',
    ].join('\n');
    const list = parseSessionList(out);
    assert.equal(list.tmux, true);
    assert.deepEqual(
      list.sessions.map((s) => [s.name, s.running, s.exitCode, s.attached, s.kind, s.command]),
      [
        ['a', true, undefined, 2, 'terminal', 'login shell'],
        ['b', false, 7, 0, 'agent', 'codex --full-auto | tee log'],
        ['c', false, 5, 0, undefined, undefined],
        ['d', false, 0, 1, 'agent', 'claude'],
      ],
    );
    assert.equal(list.sessions[0].createdAt.toISOString(), new Date(1700000000_000).toISOString());
  });

  it('says when tmux is missing, and refuses what it does not recognise', () => {
    assert.deepEqual(parseSessionList('pixels-sessions: no tmux\n'), { tmux: false, sessions: [] });
    assert.deepEqual(parseSessionList('pixels-sessions: ok\n'), { tmux: true, sessions: [] });
    assert.throws(() => parseSessionList('bash: tmux: command not found\n'), /Unexpected answer/);
    assert.throws(
      () => parseSessionList('pixels-sessions: ok\nonly|three|fields\n'),
      /Unexpected session line/,
    );
    assert.throws(() => parseSessionList('pixels-sessions: ok\nx|soon|0||0|||\n'), /start time/);
  });

  it('quotes env file values for the shell and refuses bad names', () => {
    assert.equal(envFileContent({ B: "it's", A: 'plain' }), "export A=plain\nexport B='it'\\''s'\n");
    assert.throws(() => envFileContent({ 'A-B': 'x' }), /not a variable name/);
  });

  it('refuses a relative working folder and an empty command', () => {
    assert.throws(
      () => startSessionScript({ name: 'a', kind: 'agent', command: 'x', cwd: 'repo' }),
      /absolute/,
    );
    assert.throws(() => startSessionScript({ name: 'a', kind: 'agent', command: '  ' }), /needs a command/);
  });
});

describe('session scripts against a real tmux', () => {
  const home = mkdtempSync(join(tmpdir(), 'pixels-sessions-'));
  // A private tmux socket folder and HOME: nothing of this machine's own tmux is touched.
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    TMUX_TMPDIR: home,
    SHELL: '/bin/bash',
  };
  const run = (script: string, input = '') =>
    spawnSync('bash', ['-c', script], { env, input, encoding: 'utf8', timeout: 20_000 });
  const list = () => {
    const r = run(LIST_SESSIONS_SCRIPT);
    assert.equal(r.status, 0, r.stderr);
    return parseSessionList(r.stdout);
  };
  const waitFor = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 100; i++) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  after(() => {
    run('tmux -L pixels kill-server 2> /dev/null || true');
    rmSync(home, { recursive: true, force: true });
  });

  it('no server yet: an empty list, not an error', () => {
    assert.deepEqual(list(), { tmux: true, sessions: [] });
  });

  it('starts an agent session whose variables stay off every command line, then reports its exit', async () => {
    const secret = `it's "a" $(id) \`secret\` value`;
    const script = startSessionScript({
      name: 'agent-1',
      kind: 'agent',
      cwd: '~',
      command: 'printf "%s|%s\\n" "$PX_TOKEN" "$PWD" > result; sleep 2; exit 7',
      label: 'my\tagent',
    });
    assert.ok(!script.includes('it'.concat("'s")), 'the value is not in the script');
    const r = run(script, envFileContent({ PX_TOKEN: secret }));
    assert.equal(r.status, 0, r.stderr);
    await waitFor('the result file', () => existsSync(join(home, 'result')));
    const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
    assert.ok(!ps.includes('`secret`'), 'the value shows in ps');
    assert.equal(
      spawnSync('cat', [join(home, 'result')], { encoding: 'utf8' }).stdout,
      `${secret}|${home}\n`,
    );
    assert.deepEqual(readdirSync(join(home, '.pixels/sessions')), ['tmux.conf'], 'the env file is gone');
    const running = list().sessions;
    assert.deepEqual(
      running.map((s) => [s.name, s.running, s.kind, s.command]),
      [['agent-1', true, 'agent', 'my agent']],
    );
    // The pane is dead as soon as its output ends; tmux records the exit status a moment later.
    await waitFor('the agent to end', () => list().sessions[0]?.exitCode !== undefined);
    assert.deepEqual(
      [list().sessions[0].running, list().sessions[0].exitCode],
      [false, 7],
      'the pane stays with its exit code',
    );
  });

  it('refuses a taken name and a missing folder, leaving nothing behind', () => {
    const dup = run(startSessionScript({ name: 'agent-1', kind: 'agent', command: 'true' }), '');
    assert.equal(dup.status, EXIT_SESSION_EXISTS);
    assert.match(dup.stderr, /already there/);
    const nofolder = run(
      startSessionScript({ name: 'x', kind: 'agent', command: 'true', cwd: '/nonexistent' }),
      '',
    );
    assert.notEqual(nofolder.status, 0);
    assert.match(nofolder.stderr, /no folder \/nonexistent/);
    assert.deepEqual(
      list().sessions.map((s) => s.name),
      ['agent-1'],
    );
  });

  it('a terminal session ends with its shell; stop ends a session and says when there is none', async () => {
    assert.equal(run(startSessionScript({ name: 'term', kind: 'terminal' }), '').status, 0);
    assert.deepEqual(
      list().sessions.map((s) => [s.name, s.running]),
      [
        ['agent-1', false],
        ['term', true],
      ],
    );
    assert.equal(run(stopSessionCommand('agent-1')).status, 0);
    const again = run(stopSessionCommand('agent-1'));
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /can't find session/);
    run('tmux -L pixels send-keys -t term: exit Enter');
    await waitFor('the terminal session to end', () => list().sessions.length === 0);
  });

  it('the watch waits, and returns when a session changes: its start, its program exiting, its stop', async () => {
    /** The watch command, running; `done` resolves with its exit code. */
    const watch = () => {
      const child = spawn('bash', ['-c', WATCH_SESSIONS_COMMAND], { env, stdio: 'ignore' });
      let exited = false;
      const done = new Promise<number | null>((resolve) =>
        child.on('exit', (code) => {
          exited = true;
          resolve(code);
        }),
      );
      return { done, exited: () => exited };
    };
    const r = run(startSessionScript({ name: 'w', kind: 'agent', command: 'read -r line; exit 4' }), '');
    assert.equal(r.status, 0, r.stderr);
    // The start was signalled before anyone waited: the next wait returns at once.
    assert.equal(await watch().done, 0);
    const exiting = watch();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(exiting.exited(), false, 'nothing changed yet: the watch waits');
    run('tmux -L pixels send-keys -t =w: go Enter');
    assert.equal(await exiting.done, 0);
    const w = list().sessions.find((s) => s.name === 'w');
    assert.deepEqual([w?.running, w?.exitCode], [false, 4], 'the program had exited when the watch returned');
    // Another session keeps the server up: a wait that reaches a server ending with its last session may return
    // (1) or linger until its timeout, which only bounds how long the watcher takes to notice.
    assert.equal(
      run(startSessionScript({ name: 'other', kind: 'agent', command: 'sleep 60' }), '').status,
      0,
    );
    // Drain what is pending: its start signalled, as may have tmux's own pane-died hook for w's exit (two signals
    // with nobody waiting cancel out in tmux, so this wait may not return by itself).
    run(`timeout 1 ${WATCH_SESSIONS_COMMAND}`);
    const stopping = watch();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(stopping.exited(), false, 'nothing changed yet: the watch waits');
    assert.equal(run(stopSessionCommand('w')).status, 0);
    assert.equal(await stopping.done, 0);
    assert.deepEqual(
      list().sessions.map((s) => s.name),
      ['other'],
    );
    assert.equal(run(stopSessionCommand('other')).status, 0);
  });

  it('says when tmux is not installed', () => {
    const bare = { ...env, PATH: '/nonexistent' };
    const r = spawnSync('/bin/bash', ['-c', LIST_SESSIONS_SCRIPT], { env: bare, encoding: 'utf8' });
    assert.deepEqual(parseSessionList(r.stdout), { tmux: false, sessions: [] });
    const s = spawnSync('/bin/bash', ['-c', startSessionScript({ name: 'a', kind: 'agent', command: 'x' })], {
      env: bare,
      encoding: 'utf8',
    });
    assert.equal(s.status, EXIT_NO_TMUX);
  });
});
