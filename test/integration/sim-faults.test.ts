// Fault switches (contract A): each one over a real socket, and the state after it.
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

describe('simulator faults', () => {
  let sim: SimServer;
  before(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 150 });
  });
  after(async () => sim.close());

  it('dropSocketMidJob: the socket closes mid-job, the job still completes and is found after reconnecting', async () => {
    const c = await client(sim);
    sim.faults.dropSocketMidJob('virt.instance.create');
    const ping = await c.call('core.ping');
    assert.equal(ping, 'pong', 'non-job calls are not affected');
    const id = await c.call<number>('virt.instance.create', [{ name: 'px-drop', image: 'ubuntu/24.04' }]);
    const closed = await c.closed;
    assert.notEqual(closed.code, 1000, 'an abrupt close, not a clean one');
    const states = c
      .events('core.get_jobs')
      .filter((e) => e.id === id)
      .map((e) => (e.fields as Frame).state);
    assert.ok(!states.includes('SUCCESS'), 'closed before the job ended');
    const d = await client(sim);
    const end = await d.jobEnd(id);
    assert.equal(end.state, 'SUCCESS');
    const [job] = await d.call<Frame[]>('core.get_jobs', [[['id', '=', id]]]);
    assert.equal(job.state, 'SUCCESS');
    assert.equal(
      (await sim.engine.listInstances()).filter((i) => i.name === 'px-drop').length,
      1,
      'exactly one sandbox',
    );
    // Only the next matching job was affected.
    const next = await d.call<number>('virt.instance.stop', ['px-drop', { timeout: 5 }]);
    assert.equal((await d.jobEnd(next)).state, 'SUCCESS');
    assert.equal(sim.connections(), 1);
    d.close();
  });

  it('delayReplies: replies wait, events do not', async () => {
    const c = await client(sim);
    sim.faults.delayReplies(600);
    const started = Date.now();
    assert.equal(await c.call('core.ping'), 'pong');
    assert.ok(Date.now() - started >= 590, 'reply was delayed');
    const reply = c.request('virt.instance.create', [
      { name: 'px-delay', image: 'ubuntu/24.04', autostart: false },
    ]);
    const added = await c.waitFor(
      (f) => f.method === 'collection_update' && (f.params as Frame).msg === 'added',
    );
    const replyIndex = () => c.frames.findIndex((f) => 'result' in f && typeof f.result === 'number');
    assert.equal(replyIndex(), -1, 'the job event came before the delayed reply');
    const jobId = (await reply).result;
    assert.equal((added.params as Frame).id, jobId);
    sim.faults.delayReplies(0);
    const quick = Date.now();
    await c.call('core.ping');
    assert.ok(Date.now() - quick < 500, 'no delay once switched off');
    c.close();
  });

  it('failNextJob: the next job ends FAILED with a CallError and changes nothing', async () => {
    const c = await client(sim);
    sim.faults.failNextJob('pool I/O error');
    const id = await c.call<number>('virt.instance.create', [{ name: 'px-fail', image: 'ubuntu/24.04' }]);
    const end = await c.jobEnd(id);
    assert.equal(end.state, 'FAILED');
    assert.equal(end.error, '[EFAULT] pool I/O error');
    assert.equal((end.exc_info as Frame).type, 'CallError');
    assert.equal(
      (await sim.engine.listInstances()).some((i) => i.name === 'px-fail'),
      false,
    );
    const again = await c.call<number>('virt.instance.create', [{ name: 'px-fail', image: 'ubuntu/24.04' }]);
    assert.equal((await c.jobEnd(again)).state, 'SUCCESS', 'only one job failed');
    c.close();
  });

  it('expireSession: the next authenticated call gets ENOTAUTHENTICATED, and the session is gone', async () => {
    const c = await client(sim);
    sim.faults.expireSession();
    assert.equal(await c.call('core.ping'), 'pong', 'core.ping needs no session on 25.10');
    const r = await c.request('virt.instance.query');
    assert.equal(r.error?.code, -32001);
    assert.equal(r.error?.data?.reason, '[ENOTAUTHENTICATED] Not authenticated');
    assert.equal((await c.request('system.version')).error?.data?.error, 207);
    await c.login(KEY);
    assert.equal(await c.call('system.version'), 'TrueNAS-25.10.1');
    c.close();
  });

  it('tooManyCalls: the next N calls answer -32000, then calls work again', async () => {
    const c = await client(sim);
    sim.faults.tooManyCalls(2);
    const a = await c.request('core.ping');
    const b = await c.request('virt.instance.create', [{ name: 'px-busy', image: 'ubuntu/24.04' }]);
    for (const r of [a, b]) {
      assert.deepEqual(r.error, {
        code: -32000,
        message: 'Maximum number of concurrent calls (20) has exceeded',
      });
    }
    assert.equal(await c.call('core.ping'), 'pong');
    assert.equal(
      (await sim.engine.listInstances()).some((i) => i.name === 'px-busy'),
      false,
      'refused calls do nothing',
    );
    c.close();
  });

  it('restartMidJob: connections drop, the port refuses while down, jobs are forgotten and ids start again', async () => {
    const c = await client(sim);
    const before = await c.call<number>('virt.instance.create', [{ name: 'px-warm', image: 'ubuntu/24.04' }]);
    assert.equal((await c.jobEnd(before)).state, 'SUCCESS');
    sim.faults.restartMidJob('virt.instance.create', 400);
    await c.call<number>('virt.instance.create', [{ name: 'px-restart', image: 'ubuntu/24.04' }]);
    assert.notEqual((await c.closed).code, 1000);
    await assert.rejects(RawClient.connect(sim.url), 'refused while middlewared is down');
    await new Promise((r) => setTimeout(r, 600));
    const d = await client(sim);
    assert.deepEqual(await d.call('core.get_jobs', [[['id', '=', before]]]), [], 'old jobs are forgotten');
    const id = await d.call<number>('virt.instance.stop', ['px-restart', { timeout: 5 }]);
    assert.equal(id, 1, 'ids start from 1 again');
    assert.equal((await d.jobEnd(id)).state, 'SUCCESS', 'the orphaned create finished in Incus');
    d.close();
  });

  it('failNextCall and rewriteReplies act on the named method only', async () => {
    const c = await client(sim);
    sim.faults.failNextCall('system.version', 'broken');
    assert.equal(await c.call('core.ping'), 'pong');
    assert.match(String((await c.request('system.version')).error?.data?.reason), /broken/);
    assert.equal(sim.faults.armed(), false);
    sim.faults.rewriteReplies('system.version', (frame) => frame.replace('TrueNAS', 'Garbage'));
    assert.equal(await c.call('system.version'), 'Garbage-25.10.1');
    assert.equal(await c.call('core.ping'), 'pong');
    sim.faults.reset();
    assert.equal(await c.call('system.version'), 'TrueNAS-25.10.1');
    c.close();
  });

  it('reset turns every switch off', async () => {
    sim.faults.dropSocketMidJob();
    sim.faults.delayReplies(3000);
    sim.faults.failNextJob();
    sim.faults.expireSession();
    sim.faults.tooManyCalls(5);
    sim.faults.reset();
    const c = await client(sim);
    const started = Date.now();
    const id = await c.call<number>('virt.instance.start', ['px-drop']);
    assert.equal((await c.jobEnd(id)).state, 'SUCCESS');
    assert.ok(Date.now() - started < 2500, 'replies are not delayed any more');
    assert.equal(await c.call('system.version'), 'TrueNAS-25.10.1');
    c.close();
  });
});
