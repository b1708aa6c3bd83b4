import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkpointLabelProblem,
  cpuProblem,
  defaultCheckpointLabel,
  memoryProblem,
  sandboxNameProblem,
  validateSandboxName,
} from '../../src/core/names';
import { ValidationError } from '../../src/core/errors';

test('valid sandbox names pass', () => {
  for (const name of ['a', 'box', 'my-box-2', 'A1', 'x'.repeat(60)])
    assert.equal(sandboxNameProblem(name), undefined, name);
});

test('invalid sandbox names are refused with a specific reason', () => {
  assert.match(sandboxNameProblem('')!, /empty/);
  assert.match(sandboxNameProblem('x'.repeat(61))!, /at most 60/);
  assert.match(sandboxNameProblem('has space')!, /letters, digits and hyphens/);
  assert.match(sandboxNameProblem('under_score')!, /letters, digits and hyphens/);
  assert.match(sandboxNameProblem('1box')!, /digit/);
  assert.match(sandboxNameProblem('-box')!, /start with a hyphen/);
  assert.match(sandboxNameProblem('box-')!, /end with a hyphen/);
  assert.match(sandboxNameProblem('bøx')!, /letters, digits and hyphens/);
  assert.throws(() => validateSandboxName('bad name'), ValidationError);
});

test('checkpoint labels', () => {
  assert.equal(checkpointLabelProblem('px-20260101-101010'), undefined);
  assert.equal(checkpointLabelProblem('before.refactor_2'), undefined);
  assert.ok(checkpointLabelProblem(''));
  assert.ok(checkpointLabelProblem('a/b'));
  assert.ok(checkpointLabelProblem('a@b'));
  assert.ok(checkpointLabelProblem('-a'));
  assert.ok(checkpointLabelProblem('x'.repeat(64)));
});

test('default checkpoint label is px-YYYYMMDD-HHMMSS in UTC', () => {
  assert.equal(defaultCheckpointLabel(new Date(Date.UTC(2026, 0, 2, 3, 4, 5))), 'px-20260102-030405');
  assert.equal(checkpointLabelProblem(defaultCheckpointLabel()), undefined);
});

test('memory and cpu', () => {
  assert.equal(memoryProblem(2048), undefined);
  assert.match(memoryProblem(64)!, /at least 128/);
  assert.match(memoryProblem(1.5)!, /whole/);
  assert.equal(cpuProblem('2'), undefined);
  assert.ok(cpuProblem('0'));
  assert.ok(cpuProblem('two'));
});
