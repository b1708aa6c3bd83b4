// Session variables: the `env K=V … bash -l…` command a Run Command / terminal session runs, executed by a real
// local sh (as sshd would through the login shell), must hand bash exactly the values we gave, byte for byte.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ValidationError } from '../../src/core/errors';
import { expandEnv } from '../../src/guest/env';
import { loginCommandWithEnv, loginShellWithEnv, sessionVariables } from '../../src/ssh/session-env';

const AWKWARD: Record<string, string> = {
  SINGLE: "it's 'quoted'",
  DOUBLE: 'say "hi" \\ back',
  DOLLAR: '$HOME `id` $(whoami) ${PATH}',
  SPACES: '  lead and trail  ',
  NEWLINE: 'line1\nline2',
  EMPTY: '',
  EQUALS: 'a=b=c',
  GLOB: '* ? [x] ~ ; & | < > #!',
  UNICODE: 'grüße — 日本',
};

/** Runs the command line through `sh -c` (what sshd does) with a clean, known environment. */
function run(line: string): string {
  return execFileSync('/bin/sh', ['-c', line], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent-home' },
    encoding: 'utf8',
  });
}

describe('session variables', () => {
  it('takes session values ($VAR expanded from the host) and forwarded host values, skipping unset forwards', () => {
    const vars = sessionVariables(
      { session: { A: 'one', B: '$FWD_SET/${UNSET_HERE}x' }, forward: ['FWD_SET', 'FWD_UNSET', 'FWD_EMPTY'] },
      { FWD_SET: 'from host', FWD_EMPTY: '' },
      expandEnv,
    );
    assert.deepEqual(vars, { A: 'one', B: 'from host/x', FWD_SET: 'from host', FWD_EMPTY: '' });
  });

  it('rejects a bad name and a NUL byte with a ValidationError naming the variable', () => {
    assert.throws(
      () => sessionVariables({ session: { '1BAD': 'x' }, forward: [] }, {}, expandEnv),
      (e: unknown) => e instanceof ValidationError && e.message.includes('"1BAD"'),
    );
    assert.throws(
      () => sessionVariables({ session: {}, forward: ['NUL'] }, { NUL: 'a\0b' }, expandEnv),
      (e: unknown) => e instanceof ValidationError && e.message.includes('"NUL"'),
    );
  });

  it('Run Command: every awkward value reaches the login bash byte for byte, and the command runs as given', () => {
    const script = `printf '%s\\0' ${Object.keys(AWKWARD)
      .map((k) => `"$${k}"`)
      .join(' ')}; printf 'cmd:%s' "$(echo it\\'s fine)"`;
    const out = run(loginCommandWithEnv(script, AWKWARD));
    const [values, tail] = [out.slice(0, out.lastIndexOf('\0') + 1), out.slice(out.lastIndexOf('\0') + 1)];
    assert.deepEqual(values.split('\0').slice(0, -1), Object.values(AWKWARD));
    assert.equal(tail, "cmd:it's fine");
  });

  it('Run Command without variables is a plain bash -lc', () => {
    assert.equal(loginCommandWithEnv('echo hi', {}), "bash -lc 'echo hi'");
    assert.equal(run(loginCommandWithEnv('echo hi', {})), 'hi\n');
  });

  it('terminal: the login shell starts with the variables (stdin stands in for the typed commands)', () => {
    const line = loginShellWithEnv(AWKWARD);
    assert.match(line, /bash -l$/);
    const out = execFileSync('/bin/sh', ['-c', line], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent-home' },
      input: `printf '%s\\0' "$SINGLE" "$DOLLAR" "$NEWLINE" "$EMPTY"\n`,
      encoding: 'utf8',
    });
    assert.deepEqual(out.split('\0').slice(0, -1), [
      AWKWARD.SINGLE,
      AWKWARD.DOLLAR,
      AWKWARD.NEWLINE,
      AWKWARD.EMPTY,
    ]);
    assert.equal(loginShellWithEnv({}), 'bash -l');
  });
});
