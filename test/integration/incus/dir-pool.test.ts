// The same checkpoint/restore/clone path on a `dir` pool (full copies instead of btrfs CoW).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncusBackend } from '../../../src/backends/incus/index';
import type { Lab } from '../../lab/lab';
import { labBackend, leftovers, removeTestInstances, testPrefix, waitForIpv4 } from './helpers';

describe('incus backend on the dir pool', { timeout: 180_000 }, () => {
  const prefix = testPrefix();
  const a = `${prefix}-d`;
  const b = `${prefix}-e`;
  let lab: Lab;
  let backend: IncusBackend;

  before(async () => {
    ({ lab, backend } = await labBackend({ pool: 'dir' }));
  });
  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
  });

  test('create, checkpoint, restore, clone from the current state, destroy', async () => {
    await backend.create({ name: a, image: lab.image, start: false });
    await backend.writeFile(a, '/root/marker', Buffer.from('v1\n'));
    const c1 = await backend.createCheckpoint(a);
    await backend.start(a);
    await waitForIpv4(backend, a);
    const r = await backend.exec(a, ['sh', '-c', 'echo v2 > /root/marker']);
    assert.equal(r.exitCode, 0);
    await backend.restoreCheckpoint(a, c1.label);
    assert.equal((await backend.readFile(a, '/root/marker')).toString(), 'v1\n');
    await backend.clone({ sandbox: a }, b);
    const sb = await waitForIpv4(backend, b);
    assert.notEqual(sb.ipv4, (await backend.get(a)).ipv4);
    const vols = await leftovers(lab, prefix);
    assert.ok(
      vols.some((v) => v.includes(`/storage-pools/${lab.poolDir}/`)),
      `the volumes live on the dir pool: ${vols.join(', ')}`,
    );
    await backend.destroy(a);
    await backend.destroy(b);
    assert.deepEqual(await leftovers(lab, prefix), []);
  });
});
