// quoteArg/quoteCommand: whatever goes in comes back out of a real POSIX shell byte for byte.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { loginShellCommand, quoteArg, quoteCommand } from '../../src/ssh/quote';

const SHELLS = ['/bin/sh', '/bin/bash', '/bin/dash'].filter((s) => {
  try {
    execFileSync(s, ['-c', 'true']);
    return true;
  } catch {
    return false;
  }
});

/** Runs `printf '%s\0' <quoted args>` through a shell and splits on NUL: exactly the argv the shell built. */
function roundTrip(shell: string, args: string[]): string[] {
  const out = execFileSync(shell, ['-c', quoteCommand(['printf', '%s\\0', ...args])], {
    env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent-home' },
  });
  const parts = out.toString('utf8').split('\0');
  parts.pop();
  return parts;
}

function randomArg(seed: number): string {
  const alphabet = [
    'a',
    'Z',
    '0',
    ' ',
    '\t',
    '\n',
    "'",
    '"',
    '$',
    '`',
    '\\',
    '!',
    '*',
    '?',
    '[',
    ']',
    '{',
    '}',
    '(',
    ')',
    ';',
    '&',
    '|',
    '<',
    '>',
    '#',
    '~',
    '=',
    '%',
    'é',
    '日',
    '✓',
    '\u{1F600}',
    '-',
    '.',
    '/',
    ':',
  ];
  let x = seed * 2654435761;
  const next = () => {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    return x;
  };
  const length = next() % 12;
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[next() % alphabet.length];
  return s;
}

describe('shell quoting', () => {
  it('leaves plain words alone and single-quotes the rest', () => {
    assert.equal(quoteArg('ls'), 'ls');
    assert.equal(quoteArg('/usr/bin/env'), '/usr/bin/env');
    assert.equal(quoteArg(''), "''");
    assert.equal(quoteArg('a b'), "'a b'");
    assert.equal(quoteArg("it's"), `'it'\\''s'`);
    assert.equal(quoteArg('$HOME'), "'$HOME'");
    assert.equal(quoteCommand(['echo', 'a b', '']), "echo 'a b' ''");
  });

  it('rejects what cannot be passed', () => {
    assert.throws(() => quoteArg('a\0b'), /NUL/);
    assert.throws(() => quoteCommand([]), /at least one/);
  });

  it('round-trips edge cases and 500 random arguments through real shells', () => {
    assert.ok(SHELLS.length > 0, 'no POSIX shell found');
    const edge = [
      '',
      ' ',
      'a b',
      "'",
      "''",
      '"',
      '$HOME',
      '${x:-y}',
      '$(id)',
      '`id`',
      '\\',
      'a\nb',
      '\n',
      '\t',
      '*',
      '~',
      '!',
      '#',
      'é ✓ 日本',
      '-n',
      '--',
      "'\"'\"'",
    ];
    const random = Array.from({ length: 500 }, (_, i) => randomArg(i + 1));
    for (const shell of SHELLS) {
      assert.deepEqual(roundTrip(shell, edge), edge, shell);
      for (let i = 0; i < random.length; i += 50) {
        const batch = random.slice(i, i + 50);
        assert.deepEqual(roundTrip(shell, batch), batch, `${shell} batch ${i}`);
      }
    }
  });

  it('nests correctly inside a login shell command', () => {
    const args = ['a b', "c'd", '$HOME', '', 'x\ny'];
    const line = loginShellCommand(['printf', '%s\\0', ...args]);
    assert.match(line, /^bash -lc '/);
    const out = execFileSync('/bin/sh', ['-c', line], {
      env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent-home' },
    }).toString();
    assert.deepEqual(out.split('\0').slice(0, -1), args);
    // A string is a shell command line, kept as is inside the login shell.
    assert.equal(loginShellCommand('echo "$0"'), `bash -lc 'echo "$0"'`);
  });
});
