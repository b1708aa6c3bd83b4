// test/lab/daemons.sh with real processes (`sleep` stands in for incusd): a daemon started from a folder that is
// deleted later is found and restarted from `/`; only the recorded pid of the named daemon is ever signalled.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const DAEMONS = new URL('../lab/daemons.sh', import.meta.url).pathname;
const started: number[] = [];

function bash(script: string, env: Record<string, string> = {}): { out: string; code: number } {
  try {
    const out = execFileSync('bash', ['-c', `. ${DAEMONS}\n${script}`], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { out: out.toString(), code: 0 };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer };
    return { out: e.stdout.toString(), code: e.status };
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidIn(file: string): number {
  const pid = Number(readFileSync(file, 'utf8').trim());
  started.push(pid);
  return pid;
}

after(() => {
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

test('a daemon whose working folder was deleted is restarted from /, by its recorded pid only', async () => {
  const state = mkdtempSync(join(tmpdir(), 'pixels-lab-state-'));
  const clone = mkdtempSync(join(tmpdir(), 'pixels-lab-clone-'));
  try {
    // The old way: started from the clone's folder, which is then deleted.
    bash(`cd ${clone}; setsid nohup sleep 300 > /dev/null 2>&1 < /dev/null & echo $! > ${state}/d.pid`);
    const old = pidIn(join(state, 'd.pid'));
    for (let i = 0; i < 50 && readFileSync(`/proc/${old}/comm`, 'utf8').trim() !== 'sleep'; i++)
      await new Promise((r) => setTimeout(r, 100));
    rmSync(clone, { recursive: true, force: true });
    assert.match(readlinkSync(`/proc/${old}/cwd`), / \(deleted\)$/);
    assert.equal(bash(`cwd_gone ${old}`).code, 0);

    // A pid file naming another program is not ours to stop.
    assert.equal(bash(`repair_if_cwd_gone ${state}/d.pid incusd`).code, 1);
    assert.ok(alive(old), 'a process that is not the named daemon is left alone');

    const repaired = bash(`repair_if_cwd_gone ${state}/d.pid sleep`);
    assert.equal(repaired.code, 0);
    assert.match(
      repaired.out,
      new RegExp(`restarting sleep \\(pid ${old}\\): its working folder .* is gone`),
    );
    for (let i = 0; i < 50 && alive(old); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!alive(old), 'the old daemon stopped');

    // Started again the new way: from /, healthy, and left alone by the next check.
    bash(`start_daemon ${state}/d.pid ${state}/d.log sleep 300`);
    const fresh = pidIn(join(state, 'd.pid'));
    assert.notEqual(fresh, old);
    assert.ok(alive(fresh));
    assert.equal(readlinkSync(`/proc/${fresh}/cwd`), '/');
    // The recorded pid is the daemon itself (setsid and nohup exec it in place; give them a moment to).
    const comm = () => readFileSync(`/proc/${fresh}/comm`, 'utf8').trim();
    for (let i = 0; i < 50 && comm() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(comm(), 'sleep', 'the recorded pid is the daemon');
    assert.equal(bash(`cwd_gone ${fresh}`).code, 1);
    assert.equal(bash(`repair_if_cwd_gone ${state}/d.pid sleep`).code, 1);
    assert.ok(alive(fresh));

    // stop_daemon: TERM to that pid, and nothing for a stale pid file.
    assert.equal(bash(`stop_daemon ${state}/d.pid sleep`).code, 0);
    for (let i = 0; i < 50 && alive(fresh); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!alive(fresh));
    assert.equal(bash(`stop_daemon ${state}/d.pid sleep; echo done`).out.trim(), 'done');
  } finally {
    rmSync(state, { recursive: true, force: true });
    rmSync(clone, { recursive: true, force: true });
  }
});
