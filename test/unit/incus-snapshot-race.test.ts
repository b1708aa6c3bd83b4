import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServerError } from '../../src/core/errors';
import { isSnapshotRace, retryingSnapshotRace } from '../../src/backends/incus/snapshot-race';

const RACE = new ServerError(
  "Incus: Instance snapshot record count doesn't match instance snapshot volume record count.",
);

test('the snapshot race is tried again after a pause; the first success is the answer', async () => {
  let calls = 0;
  const seen: number[] = [];
  const result = await retryingSnapshotRace(
    async () => {
      calls++;
      if (calls < 3) throw RACE;
      return 'made';
    },
    (n) => seen.push(n),
    [1, 1, 1],
  );
  assert.equal(result, 'made');
  assert.equal(calls, 3);
  assert.deepEqual(seen, [1, 2]);
});

test('other errors are not tried again, and the race gives up after the last pause', async () => {
  let calls = 0;
  const other = new ServerError('Incus: Instance is busy running a "start" operation.');
  await assert.rejects(
    retryingSnapshotRace(async () => {
      calls++;
      throw other;
    }),
    other,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    retryingSnapshotRace(
      async () => {
        calls++;
        throw RACE;
      },
      undefined,
      [1, 1],
    ),
    RACE,
  );
  assert.equal(calls, 3);
  assert.ok(isSnapshotRace(RACE));
  assert.ok(!isSnapshotRace(other));
  assert.ok(!isSnapshotRace('Instance snapshot record count'));
});
