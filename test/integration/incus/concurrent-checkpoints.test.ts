// Two windows checkpointing the same sandbox at once (the two-window reliability test met this in 1 of 7 runs):
// Incus refuses an operation that rewrites the instance's backup.yaml while another snapshot of it is half
// recorded ("Instance snapshot record count doesn't match …", src/backends/incus/snapshot-race.ts). Every
// checkpoint made and deleted at once through two backends must succeed exactly once, on the real lab.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createIncusBackend, type IncusBackend } from '../../../src/backends/incus/index';
import { silentLogger, type Logger } from '../../../src/core/log';
import { requireLab, type Lab } from '../../lab/lab';
import { removeTestInstances, testPrefix } from './helpers';

const PER_WINDOW = 6;

describe('checkpoints of one sandbox from two windows at once (real Incus)', { timeout: 180_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-cc`;
  const retries: string[] = [];
  let lab: Lab;
  let windows: IncusBackend[] = [];

  before(async () => {
    lab = await requireLab();
    const log: Logger = {
      ...silentLogger,
      info: (m: string) => void (/trying again/.test(m) && retries.push(m)),
    };
    windows = ['a', 'b'].map((w) =>
      createIncusBackend(
        { serverId: `lab-${w}`, socketPath: lab.socket, network: lab.bridge, storagePool: lab.poolBtrfs },
        log,
      ),
    );
    await windows[0].create({ name, image: lab.image, start: true });
  });

  after(async () => {
    for (const w of windows) w.dispose();
    if (lab) await removeTestInstances(lab, prefix);
  });

  const labels = ['a', 'b'].flatMap((w) => Array.from({ length: PER_WINDOW }, (_, i) => `${w}${i}`));

  /** `action` for every label at once, each through its window; the failures as "label: error". */
  async function atOnce(
    action: (window: IncusBackend, label: string) => Promise<unknown>,
  ): Promise<string[]> {
    const results = await Promise.allSettled(
      labels.map((label) => action(windows[label.startsWith('a') ? 0 : 1], label)),
    );
    return results.flatMap((r, i) => (r.status === 'rejected' ? [`${labels[i]}: ${String(r.reason)}`] : []));
  }

  test('every checkpoint made at once exists exactly once', async () => {
    const failed = await atOnce((window, label) => window.createCheckpoint(name, label));
    console.log(`concurrent checkpoints: ${labels.length} made, ${retries.length} retried after the race`);
    assert.deepEqual(failed, []);
    const have = (await windows[0].listCheckpoints(name)).map((c) => c.label).sort();
    assert.deepEqual(have, [...labels].sort());
  });

  test('every checkpoint deleted at once is gone, none reported missing', async () => {
    retries.length = 0;
    const failed = await atOnce((window, label) => window.deleteCheckpoint(name, label));
    console.log(`concurrent deletes: ${labels.length} deleted, ${retries.length} retried after the race`);
    assert.deepEqual(failed, []);
    assert.deepEqual(await windows[0].listCheckpoints(name), []);
  });
});
