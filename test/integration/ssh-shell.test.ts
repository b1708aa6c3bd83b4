// Interactive shell with a pty on the pooled connection, against a real sshd.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SshPool } from '../../src/ssh/pool';
import type { ShellSession } from '../../src/ssh/shell';
import { startSshdFixture, type SshdFixture } from '../lab/sshd';

function collect(shell: ShellSession): { text: () => string } {
  const chunks: Buffer[] = [];
  shell.onData((c) => chunks.push(c));
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ssh shell (real sshd)', () => {
  let fx: SshdFixture;
  let pool: SshPool;
  before(async () => {
    fx = await startSshdFixture();
    pool = new SshPool();
  });
  after(async () => {
    pool.dispose();
    await fx.sshd.stop();
  });

  it('shows output and the exit code', async () => {
    const shell = await pool.shell(fx.target, { cols: 80, rows: 24 });
    const out = collect(shell);
    const exits: number[] = [];
    shell.onExit((e) => exits.push(e.exitCode ?? -1));
    shell.write('echo hi; exit 3\n');
    const exit = await shell.exited;
    assert.equal(exit.exitCode, 3);
    assert.equal(exit.lost, false);
    assert.match(out.text(), /\bhi\r?\n/);
    assert.deepEqual(exits, [3]);
  });

  it('resizes the pty', async () => {
    const shell = await pool.shell(fx.target, { cols: 80, rows: 24 });
    const out = collect(shell);
    shell.write('stty size\n');
    await until(() => /24 80/.test(out.text()));
    shell.resize(132, 43);
    shell.resize(0, 0); // a hidden terminal: ignored, no throw
    await new Promise((r) => setTimeout(r, 100));
    shell.write('stty size; exit 0\n');
    const exit = await shell.exited;
    assert.equal(exit.exitCode, 0);
    assert.match(out.text(), /43 132/);
  });

  it('closes cleanly from our side and shares the connection with exec', async () => {
    const shell = await pool.shell(fx.target, { cols: 80, rows: 24 });
    const result = await pool.exec(fx.target, 'echo alongside');
    assert.equal(result.stdout.toString(), 'alongside\n');
    assert.equal(pool.size, 1);
    shell.close();
    await shell.exited; // resolves: the channel really closed
    shell.write('ignored after close\n'); // no throw
    shell.resize(10, 10);
    // The channel slot was given back: the connection still serves commands.
    assert.equal((await pool.exec(fx.target, 'echo after')).stdout.toString(), 'after\n');
    assert.equal(pool.size, 1);
  });

  it('reports a lost connection as an exit without status', async () => {
    const shell = await pool.shell(fx.target, { cols: 80, rows: 24 });
    fx.sshd.dropConnections();
    const exit = await shell.exited;
    assert.equal(exit.lost, true);
    assert.equal(exit.exitCode, null);
  });
});
