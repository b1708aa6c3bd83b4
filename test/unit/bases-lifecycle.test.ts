// The agent lifecycle policy with a fake clock (time is the boundary): idle stop, maximum age, only for marked
// sandboxes, what the tree says, and the on-disk list of agent sandboxes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sandbox, SandboxStatus } from '../../src/core/sandbox';
import {
  AgentSandboxStore,
  LifecycleEnforcer,
  describeDeadlines,
  lifecycleDeadlines,
  lifecycleDue,
  type Clock,
} from '../../src/bases/index';

const MIN = 60_000;
const HOUR = 60 * MIN;
const policy = { idleStopAfterMs: HOUR, maxAgeMs: 24 * HOUR };

class FakeClock implements Clock {
  constructor(public t = Date.UTC(2026, 11, 3, 12)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

function sandbox(name: string, status: SandboxStatus): Sandbox {
  return { name, instanceName: `px-${name}`, status };
}

test('deadlines: idle stop only while running, maximum age always; 0 turns either off', () => {
  const r = { name: 'a', createdAt: 0, lastActivityAt: 10 * MIN, by: 'agent' as const };
  assert.deepEqual(lifecycleDeadlines(r, 'running', policy), { stopsAt: 70 * MIN, destroyedAt: 24 * HOUR });
  assert.deepEqual(lifecycleDeadlines(r, 'stopped', policy), { destroyedAt: 24 * HOUR });
  assert.deepEqual(lifecycleDeadlines(r, 'running', { idleStopAfterMs: 0, maxAgeMs: 0 }), {});
  assert.equal(lifecycleDue(r, 'running', policy, 69 * MIN), undefined);
  assert.equal(lifecycleDue(r, 'running', policy, 70 * MIN), 'stop');
  assert.equal(lifecycleDue(r, 'stopped', policy, 23 * HOUR), undefined);
  assert.equal(lifecycleDue(r, 'running', policy, 24 * HOUR), 'destroy', 'destroy wins over stop');
  assert.equal(
    describeDeadlines(lifecycleDeadlines(r, 'running', policy), 58 * MIN + 30_000),
    'stops in 12 min · destroyed in 23 h',
  );
  assert.equal(describeDeadlines({}, 0), undefined);
});

test('the enforcer stops idle agent sandboxes, destroys old ones, never touches the rest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-agents-'));
  try {
    const clock = new FakeClock();
    const store = await AgentSandboxStore.open(join(dir, 'agents.json'), clock);
    // The server: what it lists, and what was done to it.
    const server = new Map<string, Sandbox>([
      ['mcp-aaaaaa', sandbox('mcp-aaaaaa', 'running')],
      ['mcp-bbbbbb', sandbox('mcp-bbbbbb', 'running')],
      ['mine', sandbox('mine', 'running')],
    ]);
    const done: string[] = [];
    let busy = '';
    const enforcer = new LifecycleEnforcer({
      store,
      clock,
      policy: () => policy,
      servers: () => ['s1'],
      list: async () => [...server.values()].map((s) => ({ ...s })),
      stop: async (_, name) => {
        done.push(`stop ${name}`);
        (server.get(name) as Sandbox).status = 'stopped';
      },
      destroy: async (_, name) => {
        done.push(`destroy ${name}`);
        server.delete(name);
      },
      isBusy: (_, name) => name === busy,
    });
    await store.mark('s1', 'mcp-aaaaaa', { by: 'agent', base: 'dev' });
    await store.mark('s1', 'mcp-bbbbbb', { by: 'agent' });

    clock.advance(30 * MIN);
    assert.deepEqual(await enforcer.enforce(), []);
    await store.touch('s1', 'mcp-bbbbbb'); // a tool call in b
    clock.advance(30 * MIN);
    const first = await enforcer.enforce();
    assert.deepEqual(
      first.map((a) => `${a.action} ${a.name}: ${a.reason}`),
      ['stop mcp-aaaaaa: idle for 1 h'],
    );
    assert.deepEqual(done, ['stop mcp-aaaaaa']);

    // A sandbox a tool is working in is left alone this round, and handled on the next.
    clock.advance(30 * MIN);
    busy = 'mcp-bbbbbb';
    assert.deepEqual(await enforcer.enforce(), []);
    busy = '';
    assert.deepEqual(
      (await enforcer.enforce()).map((a) => `${a.action} ${a.name}`),
      ['stop mcp-bbbbbb'],
    );

    // Started again by someone: that counts as activity, so it is not stopped at once.
    (server.get('mcp-aaaaaa') as Sandbox).status = 'running';
    clock.advance(MIN);
    assert.deepEqual(await enforcer.enforce(), []);
    assert.equal(store.get('s1', 'mcp-aaaaaa')?.lastActivityAt, clock.now());

    // The maximum age destroys, running or not; the person's sandbox stays running all along.
    clock.advance(23 * HOUR);
    const last = await enforcer.enforce();
    assert.deepEqual(last.map((a) => `${a.action} ${a.name}`).sort(), [
      'destroy mcp-aaaaaa',
      'destroy mcp-bbbbbb',
    ]);
    assert.ok(!done.some((d) => d.endsWith(' mine')));
    assert.equal(server.get('mine')?.status, 'running');
    assert.deepEqual(store.list('s1'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed action is reported and tried again; a failed list forgets nothing', async () => {
  const clock = new FakeClock();
  const store = await AgentSandboxStore.open(undefined, clock);
  await store.mark('s1', 'mcp-cccccc', { by: 'agent' });
  let listFails = true;
  let stopFails = true;
  const warnings: string[] = [];
  const enforcer = new LifecycleEnforcer({
    store,
    clock,
    policy: () => policy,
    servers: () => ['s1'],
    list: async () => {
      if (listFails) throw new Error('server unreachable');
      return [sandbox('mcp-cccccc', 'running')];
    },
    stop: async () => {
      if (stopFails) throw new Error('operation refused');
    },
    destroy: async () => undefined,
    log: { info: () => undefined, warn: (m) => warnings.push(m) },
  });
  clock.advance(2 * HOUR);
  assert.deepEqual(await enforcer.enforce(), []);
  assert.ok(store.get('s1', 'mcp-cccccc'), 'kept while the server cannot be listed');
  assert.match(warnings[0], /could not list the sandboxes of s1: server unreachable/);
  listFails = false;
  const [failed] = await enforcer.enforce();
  assert.equal(failed.error, 'operation refused');
  stopFails = false;
  const [ok] = await enforcer.enforce();
  assert.equal(ok.action, 'stop');
  assert.equal(ok.error, undefined);
});

test('a sandbox gone from the server is dropped from the list', async () => {
  const clock = new FakeClock();
  const store = await AgentSandboxStore.open(undefined, clock);
  await store.mark('s1', 'mcp-dddddd', { by: 'agent' });
  const enforcer = new LifecycleEnforcer({
    store,
    clock,
    policy: () => policy,
    servers: () => ['s1'],
    list: async () => [],
    stop: async () => assert.fail('nothing to stop'),
    destroy: async () => assert.fail('nothing to destroy'),
  });
  assert.deepEqual(await enforcer.enforce(), []);
  assert.deepEqual(store.list('s1'), []);
});

test('the agent list survives a reload; a corrupt file is set aside, not trusted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-agents-'));
  try {
    const clock = new FakeClock();
    const file = join(dir, 'agents.json');
    const a = await AgentSandboxStore.open(file, clock);
    await a.mark('s1', 'mcp-eeeeee', { by: 'agent', base: 'python' });
    await a.mark('s2', 'review', { by: 'person' });
    const b = await AgentSandboxStore.open(file, clock);
    assert.deepEqual(b.get('s1', 'mcp-eeeeee'), {
      name: 'mcp-eeeeee',
      createdAt: clock.now(),
      lastActivityAt: clock.now(),
      base: 'python',
      by: 'agent',
    });
    assert.equal(b.get('s2', 'review')?.by, 'person');
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).version, 1);

    writeFileSync(file, '{"version":1,"servers":{"s1":[{"name":"x","createdAt":"yesterday"}]}}');
    const warnings: string[] = [];
    const c = await AgentSandboxStore.open(file, clock, (m) => warnings.push(m));
    assert.deepEqual(c.list('s1'), []);
    assert.match(warnings[0], /could not be read; it was moved to .*corrupt-/);
    assert.ok(readdirSync(dir).some((f) => f.startsWith('agents.json.corrupt-')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
