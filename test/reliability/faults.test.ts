// Part 1 of `npm run test:reliability`: faults at scale on both backends. Prints
// "faults: N injected, 0 lost, 0 duplicated, 0 half-made" and fails unless N >= 50 and the rest are 0.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requireLab, type Lab } from '../lab/lab';
import { removeTestInstances, testPrefix } from '../integration/incus/helpers';
import { IncusFaultRig, INCUS_FAULTS } from './incus-faults';
import { FaultTally } from './tally';
import { OPS, TRUENAS_FAULTS, TrueNASFaultRig } from './truenas-faults';

const tally = new FaultTally();

describe('faults at scale', () => {
  for (const version of ['25.04', '25.10'] as const) {
    test(`TrueNAS ${version} (simulator): ${OPS.length} operations × ${TRUENAS_FAULTS.length} faults`, async () => {
      const rig = await TrueNASFaultRig.start(version);
      try {
        // Faults outer, operations inner: the default checkpoint labels of one run lie seconds apart.
        for (const fault of TRUENAS_FAULTS) for (const op of OPS) tally.add(await rig.run(op, fault));
      } finally {
        await rig.close();
      }
    });
  }

  describe('Incus (lab, through a fault-injecting proxy)', () => {
    let lab: Lab;
    const prefix = testPrefix();
    before(async () => {
      lab = await requireLab();
    });
    after(async () => {
      if (lab) await removeTestInstances(lab, prefix);
    });
    test(`${OPS.length} operations × ${INCUS_FAULTS.length} faults`, async () => {
      const rig = await IncusFaultRig.start(lab, prefix);
      try {
        for (const fault of INCUS_FAULTS) for (const op of OPS) tally.add(await rig.run(op, fault));
      } finally {
        await rig.close();
      }
    });
  });

  test('the figures', () => {
    console.log(tally.line());
    assert.deepEqual(tally.problems(), []);
    assert.ok(tally.injected >= 50, `only ${tally.injected} faults injected`);
    assert.ok(
      tally.cases.some((c) => c.where.startsWith('TrueNAS')) &&
        tally.cases.some((c) => c.where.startsWith('Incus')),
      'both backends',
    );
  });
});
