// Parts 1 and 2 of `npm run test:reliability`, on both backends (the simulator's memory engine for TrueNAS, the
// lab through a fault-injecting proxy for Incus):
//   "faults: N injected, 0 lost, 0 duplicated, 0 half-made" (N >= 50)
//   "fuzzed replies: N, 0 crashes, 0 hangs"
// Incus's faults include provisioning over SSH whose connection goes away mid-step (ssh-provision-faults.ts).
// Both parts share one set of lab sandboxes: real containers are the slow part on a busy machine.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requireLab, type Lab } from '../lab/lab';
import { removeTestInstances, testPrefix } from '../integration/incus/helpers';
import type { FuzzCase } from './garbage';
import { IncusFaultRig, INCUS_FAULTS } from './incus-faults';
import { fuzzIncus } from './incus-fuzz';
import { SSH_FAULTS, SshProvisionFaultRig, STRUCK_STEPS } from './ssh-provision-faults';
import { FaultTally } from './tally';
import { OPS, TRUENAS_FAULTS, TrueNASFaultRig } from './truenas-faults';
import { fuzzTrueNAS } from './truenas-fuzz';

const faults = new FaultTally();
const fuzzed: FuzzCase[] = [];

describe('faults at scale and garbage from servers', () => {
  for (const version of ['25.04', '25.10'] as const) {
    test(`TrueNAS ${version} (simulator): ${OPS.length} operations × ${TRUENAS_FAULTS.length} faults`, async () => {
      const rig = await TrueNASFaultRig.start(version);
      try {
        // Faults outer, operations inner: the default checkpoint labels of one run lie seconds apart.
        for (const fault of TRUENAS_FAULTS) for (const op of OPS) faults.add(await rig.run(op, fault));
      } finally {
        await rig.close();
      }
    });
  }

  test('TrueNAS (simulator): every parsed reply, garbled', async () => {
    fuzzed.push(...(await fuzzTrueNAS()));
  });

  describe('Incus (lab, through a fault-injecting proxy)', () => {
    let lab: Lab;
    let rig: IncusFaultRig | undefined;
    const prefix = testPrefix();
    before(async () => {
      lab = await requireLab();
      rig = await IncusFaultRig.start(lab, prefix);
    });
    after(async () => {
      await rig?.close();
      if (lab) await removeTestInstances(lab, prefix);
    });

    test(`${OPS.length} operations × ${INCUS_FAULTS.length} faults`, async () => {
      // Creates and clones come before the destroys that remove what they made.
      for (const fault of INCUS_FAULTS) for (const op of OPS) faults.add(await rig!.run(op, fault));
    });

    test('every parsed reply, garbled', async () => {
      fuzzed.push(...(await fuzzIncus(lab, `${prefix}-base`)));
    });

    test(`provisioning over SSH: ${STRUCK_STEPS.length} steps × ${SSH_FAULTS.length} ways the connection goes away`, async () => {
      const ssh = await SshProvisionFaultRig.start(prefix);
      try {
        for (const fault of SSH_FAULTS)
          for (const step of STRUCK_STEPS) faults.add(await ssh.run(step, fault));
      } finally {
        await ssh.close();
      }
    });
  });

  test('the figures', () => {
    console.log(faults.line());
    const crashes = fuzzed.filter((c) => c.outcome === 'crash');
    const hangs = fuzzed.filter((c) => c.outcome === 'hang');
    console.log(`fuzzed replies: ${fuzzed.length}, ${crashes.length} crashes, ${hangs.length} hangs`);
    assert.deepEqual(faults.problems(), []);
    assert.ok(faults.injected >= 50, `only ${faults.injected} faults injected`);
    for (const backend of ['TrueNAS', 'Incus']) {
      assert.ok(
        faults.cases.some((c) => c.where.startsWith(backend)),
        `faults on ${backend}`,
      );
      assert.ok(
        fuzzed.some((c) => c.where.startsWith(backend)),
        `garbage from ${backend}`,
      );
    }
    assert.deepEqual(
      [...crashes, ...hangs].map((c) => `${c.where}: ${c.outcome} ${c.detail}`),
      [],
    );
  });
});
