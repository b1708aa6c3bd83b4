// Bases on real containers: a small base built from the lab image with a short setup script (its output streamed
// as progress), a sandbox created from it that has the base's file and its own identity, a failing setup script
// that leaves nothing behind, and the lifecycle policy stopping and destroying a real agent sandbox on a fake clock.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IncusBackend } from '../../../src/backends/incus/index';
import {
  AgentSandboxStore,
  BaseService,
  LifecycleEnforcer,
  parseBases,
  type BaseFailure,
  type BasesConfig,
  type Clock,
} from '../../../src/bases/index';
import { NotFoundError, ServerError, ValidationError } from '../../../src/core/errors';
import { backendExecutor } from '../../../src/guest/index';
import type { Lab } from '../../lab/lab';
import { labBackend, removeTestInstances, testPrefix } from '../incus/helpers';
import { headlessBaseWorkflows, type HeadlessBases } from './headless';

const SETUP = `#!/bin/bash
set -eu
echo "setup: starting"
mkdir -p /opt/base
echo "built into the base" > /opt/base/marker.txt
echo "machine-id $(cat /etc/machine-id)"
echo "hostkey $(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | awk '{print $2}')"
sleep 1
echo "setup: done"
`;

describe('bases on the lab', { timeout: 300_000 }, () => {
  const prefix = testPrefix();
  const dir = mkdtempSync(join(tmpdir(), 'px-bases-test-'));
  let lab: Lab;
  let backend: IncusBackend;
  let headless: HeadlessBases;
  let config: BasesConfig;
  let service: BaseService;
  let agents: AgentSandboxStore;
  const clock = {
    t: Date.now(),
    now() {
      return this.t;
    },
  } satisfies Clock & { t: number };
  const progress: string[] = [];
  let savedFailures: BaseFailure[] = [];

  before(async () => {
    ({ lab, backend } = await labBackend());
    headless = headlessBaseWorkflows(backend, lab.socket);
    writeFileSync(join(dir, 'small.sh'), SETUP);
    writeFileSync(
      join(dir, 'broken.sh'),
      'echo "fetching deps"\necho "E: no route to deps.example" >&2\nexit 3\n',
    );
    const parsed = parseBases({
      mcp: {
        base_prefix: `${prefix}-b-`,
        bases: {
          small: { parent_image: lab.image, setup_script: join(dir, 'small.sh'), description: 'test base' },
          broken: { parent_image: lab.image, setup_script: join(dir, 'broken.sh') },
        },
      },
      env: {},
      file: join(dir, 'config.toml'),
    });
    assert.deepEqual(parsed.problems, []);
    config = parsed.config;
    agents = await AgentSandboxStore.open(join(dir, 'agents.json'), clock);
    service = new BaseService({
      workflows: headless.workflows,
      config: () => config,
      agents: async () => agents,
      clock,
      failures: { initial: [], save: (all) => (savedFailures = all) },
    });
  });
  after(async () => {
    headless?.dispose();
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  test('build: create + provisioning + setup script (output as progress) + checkpoint of the stopped base', async () => {
    const before = (await service.list('lab')).find((b) => b.name === 'small');
    assert.equal(before?.status, 'missing');
    assert.equal(before?.sandboxName, `${prefix}-b-small`);
    const building = service.build('lab', 'small', { progress: (m) => progress.push(m) });
    assert.equal((await service.status('lab', 'small')).status, 'building');
    const checkpoint = await building;
    assert.equal(checkpoint.label, 'initial');
    assert.ok(progress.includes('setup: setup: starting'), progress.join('\n'));
    assert.ok(progress.includes('setup: setup: done'));
    const after = await service.status('lab', 'small');
    assert.equal(after.status, 'ready');
    assert.equal(after.lastCheckpoint?.label, 'initial');
    assert.equal((await backend.get(`${prefix}-b-small`)).status, 'stopped');
  });

  test('create from the base: the base file is there, with a fresh identity; an agent sandbox is marked', async () => {
    const baseMachineId = progress.find((m) => m.startsWith('setup: machine-id '))?.split(' ')[2];
    const baseHostKey = progress.find((m) => m.startsWith('setup: hostkey '))?.split(' ')[2];
    assert.ok(baseMachineId && baseHostKey);
    const name = `${prefix}-c1`;
    const t0 = Date.now();
    const made = await service.createFromBase('lab', 'small', { name, agent: true });
    const took = Date.now() - t0;
    assert.equal(made.name, name);
    const r = await backendExecutor(
      backend,
      name,
    )(
      "cat /opt/base/marker.txt; cat /etc/machine-id; hostname; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | awk '{print $2}'",
    );
    const [marker, machineId, hostname, hostKey] = r.output.trim().split('\n');
    assert.equal(marker, 'built into the base');
    assert.notEqual(machineId, baseMachineId, 'a clone has its own machine-id');
    assert.equal(hostname, `px-${name}`);
    assert.notEqual(hostKey, baseHostKey, 'a clone has its own SSH host key');
    assert.equal(agents.get('lab', name)?.base, 'small');
    assert.ok(took < 30_000, `create from base took ${took} ms`);
  });

  test('the lifecycle policy stops the idle agent sandbox, then destroys it at its maximum age', async () => {
    const name = `${prefix}-c1`;
    const enforcer = new LifecycleEnforcer({
      store: agents,
      clock,
      policy: () => ({ idleStopAfterMs: 60 * 60_000, maxAgeMs: 24 * 60 * 60_000 }),
      servers: () => ['lab'],
      list: () => backend.list(),
      stop: (_, n) => backend.stop(n),
      destroy: (_, n) => backend.destroy(n),
    });
    assert.deepEqual(await enforcer.enforce(), []);
    clock.t += 61 * 60_000;
    const stopped = await enforcer.enforce();
    assert.deepEqual(
      stopped.map((a) => `${a.action} ${a.name} ${a.error ?? ''}`),
      [`stop ${name} `],
    );
    assert.equal((await backend.get(name)).status, 'stopped');
    assert.equal(
      (await backend.get(`${prefix}-b-small`)).status,
      'stopped',
      'the base itself is not an agent sandbox',
    );
    clock.t += 24 * 60 * 60_000;
    const destroyed = await enforcer.enforce();
    assert.deepEqual(
      destroyed.map((a) => `${a.action} ${a.name} ${a.error ?? ''}`),
      [`destroy ${name} `],
    );
    await assert.rejects(backend.get(name), NotFoundError);
    assert.ok(await backend.get(`${prefix}-b-small`), 'the base is still there');
  });

  test('a failing setup script: the build fails with its output, nothing is kept, the status says why', async () => {
    await assert.rejects(service.build('lab', 'broken'), (err: unknown) => {
      assert.ok(err instanceof ServerError);
      assert.match(
        err.message,
        /setup script of base "broken" failed \(exit code 3\); the base was not kept/,
      );
      assert.match(err.message, /E: no route to deps.example/);
      return true;
    });
    await assert.rejects(backend.get(`${prefix}-b-broken`), NotFoundError);
    const status = await service.status('lab', 'broken');
    assert.equal(status.status, 'failed');
    assert.match(status.error ?? '', /exit code 3/);
    // The reason outlives the editor: a new service (a reload) starts from what was saved.
    assert.deepEqual(
      savedFailures.map((f) => [f.serverId, f.base]),
      [['lab', 'broken']],
    );
    const reloaded = new BaseService({
      workflows: headless.workflows,
      config: () => config,
      failures: { initial: savedFailures, save: () => undefined },
    });
    const again = await reloaded.status('lab', 'broken');
    assert.equal(again.status, 'failed');
    assert.equal(again.error, status.error);
    await assert.rejects(
      service.createFromBase('lab', 'broken', { name: `${prefix}-c2` }),
      (err: unknown) => {
        assert.ok(err instanceof NotFoundError);
        assert.match(
          err.message,
          /Base "broken" is not built on this server \(its last build failed: .*exit code 3/,
        );
        return true;
      },
    );
  });

  test('Rebuild with a setup script that cannot be read is refused before the old base is destroyed', async () => {
    assert.equal((await service.status('lab', 'small')).status, 'ready');
    renameSync(join(dir, 'small.sh'), join(dir, 'small.sh.away'));
    try {
      await assert.rejects(service.rebuild('lab', 'small'), (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.match(err.message, /Base "small": its setup script .*small\.sh cannot be read \(ENOENT\)/);
        return true;
      });
    } finally {
      renameSync(join(dir, 'small.sh.away'), join(dir, 'small.sh'));
    }
    const kept = await service.status('lab', 'small');
    assert.equal(kept.status, 'ready', 'the old base is still there');
    assert.equal(kept.lastCheckpoint?.label, 'initial');
  });
});
