// Jobs on the simulator: ids, the core.get_jobs event sequence, validation inside the job, job lock errors,
// core.get_jobs filters, core.job_wait/job_abort, and core.set_options (legacy and new-style jobs).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimServer } from '../sim/index.js';
import { RawClient, type Frame } from '../sim/rawclient.js';

const KEY = `1-${'a'.repeat(64)}`;

async function client(sim: SimServer): Promise<RawClient> {
  const c = await RawClient.connect(sim.url);
  await c.login(KEY);
  await c.call('core.subscribe', ['core.get_jobs']);
  return c;
}

function jobEvents(c: RawClient, id: number): { msg: string; state: string; percent: unknown }[] {
  return c
    .events('core.get_jobs')
    .filter((e) => e.id === id)
    .map((e) => {
      const f = e.fields as Frame;
      return { msg: String(e.msg), state: String(f.state), percent: (f.progress as Frame).percent };
    });
}

describe('simulator jobs (25.10)', () => {
  let sim: SimServer;
  before(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 40 });
  });
  after(async () => sim.close());

  it('numbers jobs from 1 and sends ADDED WAITING, RUNNING, progress, then SUCCESS twice', async () => {
    const c = await client(sim);
    const id = await c.call<number>('virt.instance.create', [
      { name: 'px-a', image: 'ubuntu/24.04', autostart: false },
    ]);
    assert.equal(id, 1);
    const end = await c.jobEnd(id);
    await new Promise((r) => setTimeout(r, 20));
    const seq = jobEvents(c, id);
    assert.deepEqual(seq[0], { msg: 'added', state: 'WAITING', percent: 0 });
    assert.deepEqual(seq[1], { msg: 'changed', state: 'RUNNING', percent: 0 });
    assert.ok(
      seq.slice(2, -2).length >= 1 && seq.slice(2, -2).every((e) => e.state === 'RUNNING'),
      'progress events',
    );
    assert.deepEqual(seq.slice(-2), [
      { msg: 'changed', state: 'SUCCESS', percent: 100 },
      { msg: 'changed', state: 'SUCCESS', percent: 100 },
    ]);
    assert.equal(end.method, 'virt.instance.create');
    assert.deepEqual(end.message_ids, [3], 'the JSON-RPC id of the call (login=1, subscribe=2, create=3)');
    assert.deepEqual(Object.keys(end.time_started as object), ['$date']);
    assert.deepEqual(Object.keys(end.time_finished as object), ['$date']);
    assert.equal((end.result as Frame).name, 'px-a');
    assert.equal((end.credentials as Frame).type, 'API_KEY');
    for (const key of [
      'transient',
      'description',
      'abortable',
      'logs_path',
      'logs_excerpt',
      'result_encoding_error',
      'error',
      'exception',
      'exc_info',
    ]) {
      assert.ok(key in end, key);
    }
    const second = await c.call<number>('virt.instance.start', ['px-a']);
    assert.equal(second, 2);
    await c.jobEnd(second);
    c.close();
  });

  it('validates job arguments inside the job (FAILED once, type VALIDATION, extra triples)', async () => {
    const c = await client(sim);
    const cases: [string, unknown[], unknown[][], string][] = [
      [
        'virt.instance.create',
        [{ name: 'px-m', image: 'ubuntu/24.04', memory: 1024 }],
        [['virt_instance_create.memory', 'Value error, Value must be 32MiB or larger', 22]],
        '[EINVAL] virt_instance_create.memory: Value error, Value must be 32MiB or larger\n',
      ],
      [
        'virt.instance.create',
        [{ name: 'px-m' }],
        [['virt_instance_create.image', 'Field required', 22]],
        '[EINVAL] virt_instance_create.image: Field required\n',
      ],
      [
        'virt.instance.create',
        [{ name: 'px-m', image: 'ubuntu/24.04', foo: 1 }],
        [['virt_instance_create.foo', 'Extra inputs are not permitted', 22]],
        '[EINVAL] virt_instance_create.foo: Extra inputs are not permitted\n',
      ],
      [
        'virt.instance.create',
        [{ name: 'px-a', image: 'ubuntu/24.04' }],
        [['virt_instance_create.name', "Name 'px-a' already exists", 22]],
        "[EINVAL] virt_instance_create.name: Name 'px-a' already exists\n",
      ],
      [
        'virt.instance.stop',
        ['px-a'],
        [['', 'Value error, Timeout should be set if force is disabled', 22]],
        '[EINVAL] : Value error, Timeout should be set if force is disabled\n',
      ],
    ];
    for (const [method, params, extra, error] of cases) {
      const id = await c.call<number>(method, params);
      assert.equal(typeof id, 'number', `${method} returns a job id`);
      const end = await c.jobEnd(id);
      assert.equal(end.state, 'FAILED');
      assert.equal(end.error, error);
      assert.deepEqual(end.exc_info, { ...(end.exc_info as Frame), type: 'VALIDATION', errno: null, extra });
      const seq = jobEvents(c, id);
      assert.equal(seq.filter((e) => e.state === 'FAILED').length, 1, 'FAILED exactly once');
    }
    const nope = await c.call<number>('virt.instance.start', ['nope']);
    const end = await c.jobEnd(nope);
    assert.equal(end.error, '[ENOENT] None: VirtInstance nope does not exist');
    assert.deepEqual(end.exc_info, {
      repr: "InstanceNotFound('VirtInstance nope does not exist')",
      type: 'VALIDATION',
      errno: 2,
      extra: [[null, 'VirtInstance nope does not exist', 2]],
    });
    const stop = await c.call<number>('virt.instance.stop', ['nope', { timeout: 30 }]);
    const stopEnd = await c.jobEnd(stop);
    assert.equal(stopEnd.error, '[EFAULT] Instance not found');
    assert.equal((stopEnd.exc_info as Frame).type, 'CallError');
    assert.equal((stopEnd.exc_info as Frame).errno, 14);
    assert.equal(
      sim.engine instanceof Object && (await sim.engine.listInstances()).some((i) => i.name === 'px-m'),
      false,
    );
    c.close();
  });

  it('fails at once when the job lock cannot be computed (non-dict or missing create args)', async () => {
    const c = await client(sim);
    const before = (await c.call<Frame[]>('core.get_jobs')).length;
    for (const params of [[], ['px-x'], [42]]) {
      const r = await c.request('virt.instance.create', params);
      assert.equal(r.error?.code, -32001);
      assert.equal(r.error?.data?.error, 22);
      assert.equal(
        r.error?.data?.reason,
        '[EINVAL] Error handling job lock. This is most likely caused by invalid call arguments.',
      );
    }
    assert.equal((await c.request('virt.instance.start', [])).error?.code, -32001);
    assert.equal((await c.call<Frame[]>('core.get_jobs')).length, before, 'no job was created');
    c.close();
  });

  it('filters core.get_jobs and supports options', async () => {
    const c = await client(sim);
    const id = await c.call<number>('virt.instance.restart', ['px-a', { timeout: 10 }]);
    await c.jobEnd(id);
    const one = await c.call<Frame[]>('core.get_jobs', [[['id', '=', id]]]);
    assert.equal(one.length, 1);
    assert.equal(one[0].method, 'virt.instance.restart');
    const failed = await c.call<Frame[]>('core.get_jobs', [
      [
        ['method', '=', 'virt.instance.create'],
        ['state', '=', 'FAILED'],
      ],
    ]);
    assert.ok(failed.length >= 4 && failed.every((j) => j.state === 'FAILED'));
    const count = await c.call<number>('core.get_jobs', [
      [['state', 'in', ['SUCCESS', 'FAILED']]],
      { count: true },
    ]);
    assert.equal(typeof count, 'number');
    const got = await c.call<Frame>('core.get_jobs', [
      [['id', '=', id]],
      { get: true, select: ['id', 'state'] },
    ]);
    assert.deepEqual(got, { id, state: 'SUCCESS' });
    const since = await c.call<Frame[]>('core.get_jobs', [
      [['time_started', '>=', { $date: Date.now() - 60_000 }]],
    ]);
    assert.ok(since.length > 0, '$date filters are decoded');
    const missing = await c.request('core.get_jobs', [[['id', '=', 99999]], { get: true }]);
    assert.equal(missing.error?.data?.reason, 'MatchNotFound()');
    c.close();
  });

  it('core.job_wait returns the result; core.job_abort aborts a waiting job', async () => {
    const c = await client(sim);
    const id = await c.call<number>('virt.instance.stop', ['px-a', { force: true }]);
    const waitId = await c.call<number>('core.job_wait', [id]);
    const waited = await c.jobEnd(waitId);
    assert.equal(waited.state, 'SUCCESS');
    assert.equal(waited.result, true);
    // Two jobs on the same instance share a lock: the second stays WAITING and can be aborted.
    const first = await c.call<number>('virt.instance.start', ['px-a']);
    const second = await c.call<number>('virt.instance.stop', ['px-a', { timeout: 5 }]);
    assert.equal(await c.call('core.job_abort', [second]), null);
    const aborted = await c.jobEnd(second);
    assert.equal(aborted.state, 'ABORTED');
    assert.equal(aborted.error, null);
    assert.equal((await c.jobEnd(first)).state, 'SUCCESS');
    assert.equal((await sim.engine.listInstances()).find((i) => i.name === 'px-a')?.status, 'RUNNING');
    const unknown = await c.request('core.job_abort', [424242]);
    assert.equal(unknown.error?.code, -32602);
    assert.equal(unknown.error?.data?.reason, '[ENOENT] None: Job with id 424242 does not exist');
    c.close();
  });

  it('core.set_options legacy_jobs=false withholds job replies until the job ends', async () => {
    const c = await client(sim);
    assert.deepEqual(await c.call('core.set_options', [{ legacy_jobs: false }]), {
      legacy_jobs: false,
      private_methods: false,
      py_exceptions: false,
    });
    const entry = await c.call<Frame>('virt.instance.create', [{ name: 'px-new-style', image: 'debian/12' }]);
    assert.equal(entry.name, 'px-new-style');
    assert.equal(entry.status, 'RUNNING');
    const added = c
      .events('core.get_jobs')
      .find(
        (e) =>
          e.msg === 'added' &&
          (e.fields as Frame).method === 'virt.instance.create' &&
          ((e.fields as Frame).arguments as Frame[])[0].name === 'px-new-style',
      );
    assert.ok(added, 'the job id arrives through the added event');
    assert.equal(((added!.fields as Frame).message_ids as unknown[]).length, 1);
    const dup = await c.request('virt.instance.create', [{ name: 'px-new-style', image: 'debian/12' }]);
    assert.equal(dup.error?.code, -32602);
    assert.deepEqual(dup.error?.data?.extra, [
      ['virt_instance_create.name', "Name 'px-new-style' already exists", 22],
    ]);
    const stop = await c.request('virt.instance.stop', ['nope', { timeout: 1 }]);
    assert.equal(stop.error?.code, -32001);
    assert.equal(stop.error?.data?.reason, '[EFAULT] Instance not found');
    c.close();
  });
});

describe('simulator jobs (25.04)', () => {
  it('core.set_options returns null and keeps legacy jobs; jobs carry no message_ids', async () => {
    const sim = await startSimulator({ version: '25.04', apiKey: KEY, jobDurationMs: 10 });
    const c = await client(sim);
    assert.equal(await c.call('core.set_options', [{ legacy_jobs: false, whatever: 1 }]), null);
    const id = await c.call<number>('virt.instance.create', [
      { name: 'px-l', image: 'ubuntu/24.04', autostart: false },
    ]);
    assert.equal(typeof id, 'number');
    const end = await c.jobEnd(id);
    assert.equal('message_ids' in end, false);
    assert.equal('login_id' in ((end.credentials as Frame).data as Frame), false);
    c.close();
    await sim.close();
  });
});
