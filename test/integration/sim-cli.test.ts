// The simulator CLI: `npm run sim -- ...` prints exactly one ready line, serves, and stops cleanly on SIGTERM;
// bad arguments exit 2 with a clear message.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { RawClient } from '../sim/rawclient.js';

const KEY = `1-${'c'.repeat(64)}`;
const LINE = /^truenas-sim listening on ws:\/\/127\.0\.0\.1:(\d+)\/api\/current$/;

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

function readyLine(child: ChildProcess, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`no ready line within ${timeoutMs} ms; stdout so far: ${out}`)),
      timeoutMs,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('truenas-sim'));
      if (line !== undefined && out.includes('\n')) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.on('exit', (code) => reject(new Error(`exited (${code}) before the ready line; stdout: ${out}`)));
  });
}

/** The node process that runs test/sim/main.ts itself (the deepest one under npm -> sh -> tsx). */
function simPid(root: number): number {
  // A thread can end while we read its children list: read each one on its own so one vanished thread does not
  // hide the whole process tree.
  const children = (pid: number): number[] => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      return [];
    }
    return tasks.flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(Number);
      } catch {
        return [];
      }
    });
  };
  const cmdline = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  const all: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const kid of children(pid)) {
      all.push(kid);
      queue.push(kid);
    }
  }
  // Breadth-first order: the last match is the deepest, i.e. the simulator rather than a tsx relay above it.
  const matches = all.filter((pid) => cmdline(pid).includes('test/sim/main.ts'));
  if (matches.length === 0) {
    const tree = all.map((pid) => `${pid}: ${cmdline(pid).split('\0').join(' ')}`).join('; ');
    throw new Error(`simulator process not found under npm (${root}); tree: ${tree}`);
  }
  return matches[matches.length - 1];
}

describe('simulator CLI', () => {
  it('npm run sim prints the ready line, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      'npm',
      ['run', '--silent', 'sim', '--', '--port', '0', '--version', '25.10', '--api-key', KEY, '--seed'],
      // Its own process group, so that a failing test can end npm, sh, tsx and the simulator together.
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    const done = exited(child);
    try {
      const line = await readyLine(child);
      const match = LINE.exec(line);
      assert.ok(match, `ready line: ${line}`);
      const c = await RawClient.connect(`ws://127.0.0.1:${match![1]}/api/current`);
      await c.login(KEY);
      const rows = await c.call<{ name: string }[]>('virt.instance.query', [[], { select: ['name'] }]);
      assert.deepEqual(rows.map((r) => r.name).sort(), ['px-agent', 'px-old', 'px-web'], '--seed');
      c.close();
      process.kill(simPid(child.pid!), 'SIGTERM');
      assert.deepEqual(await done, { code: 0, signal: null });
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group has already gone
      }
    }
  });

  it('uses the requested port and stops on SIGINT too', async () => {
    const probe = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/sim/main.ts', '--port', '0', '--version', '25.04', '--api-key', KEY],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const first = LINE.exec(await readyLine(probe))![1];
    const probeDone = exited(probe);
    probe.kill('SIGINT');
    assert.deepEqual(await probeDone, { code: 0, signal: null });

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/sim/main.ts', `--port=${first}`, '--version=26', `--api-key=${KEY}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const done = exited(child);
    assert.equal(await readyLine(child), `truenas-sim listening on ws://127.0.0.1:${first}/api/current`);
    child.kill('SIGTERM');
    assert.deepEqual(await done, { code: 0, signal: null });
  });

  it('exits 2 with a clear message on bad arguments', async () => {
    const cases: [string[], RegExp][] = [
      [['--version', '25.04'], /--api-key is required/],
      [
        ['--version', '24.10', '--api-key', KEY],
        /--version must be one of 25\.04, 25\.10, 26, 26\.0\.0-BETA\.3, 26\.0\.0-RC\.1, 26-b3, 26-rc1, not 24\.10/,
      ],
      [['--version', '25.04', '--api-key', 'nodash'], /--api-key must look like/],
      [['--version', '25.04', '--api-key', KEY, '--port', 'http'], /--port must be 0-65535/],
      [['--version', '25.04', '--api-key', KEY, '--frobnicate'], /unknown argument: --frobnicate/],
      [['--version', '25.04', '--api-key', KEY, '--engine', 'zfs'], /--engine must be memory or incus/],
      [
        ['--version', '25.04', '--api-key', KEY, '--tls-cert', '/nope.pem'],
        /--tls-cert and --tls-key go together/,
      ],
      [['--version'], /--version needs a value/],
      [
        ['--version', '25.10', '--api-key', KEY, '--seed-scale', '1000,20'],
        /--seed-scale must be <sandboxes>,<checkpoints>,<others>, not 1000,20/,
      ],
    ];
    for (const [args, message] of cases) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/sim/main.ts', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TRUENAS_SIM_API_KEY: '' },
      });
      let err = '';
      let out = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const { code } = await exited(child);
      assert.equal(code, 2, `${args.join(' ')}: ${err}`);
      assert.match(err, message);
      assert.equal(out, '', 'nothing on stdout');
    }
  });
});
