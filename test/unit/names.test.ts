import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkpointLabelProblem,
  cpuProblem,
  defaultCheckpointLabel,
  formatMiB,
  memoryLimitProblem,
  memoryProblem,
  nameClash,
  nameClashProblem,
  parseMemory,
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

test('memory as typed: MiB by default, M/G/T and MiB/GiB, spaces allowed; binary units like the tree', () => {
  const mib = (t: string) => {
    const r = parseMemory(t);
    return 'mib' in r ? r.mib : r.problem;
  };
  assert.equal(mib('2048'), 2048);
  assert.equal(mib('512M'), 512);
  assert.equal(mib('4G'), 4096);
  assert.equal(mib('4 GiB'), 4096);
  assert.equal(mib(' 4gib '), 4096);
  assert.equal(mib('1.5G'), 1536);
  assert.equal(mib('1T'), 1024 * 1024);
  assert.match(String(mib('4 GB of RAM')), /such as 2048 \(MiB\), 512M, 4G or 4 GiB/);
  assert.match(String(mib('1.3M')), /whole number of MiB/);
  assert.match(String(mib('')), /such as/);
  // What the create flow shows is what it reads back.
  for (const v of [128, 1500, 2048, 4096]) assert.equal(mib(formatMiB(v)), v);
});

test('CPU and memory against the server limits, with the limit in the message', () => {
  assert.equal(cpuProblem('16', { cpus: 16 }), undefined);
  assert.match(cpuProblem('999', { cpus: 16 })!, /has 16 CPU cores; ask for at most 16/);
  assert.equal(cpuProblem('999'), undefined, 'no limit known: only the form is checked');
  assert.equal(memoryLimitProblem(4096, { memoryMiB: 65536 }), undefined);
  assert.match(memoryLimitProblem(100000, { memoryMiB: 65536 })!, /has 64 GiB of memory/);
  assert.match(memoryLimitProblem(64, { memoryMiB: 65536 })!, /at least 128/);
});

test('names that differ only in case clash (host names ignore case)', () => {
  assert.equal(nameClash('Agent', ['web', 'agent']), 'agent');
  assert.equal(nameClash('agent', ['web', 'agent']), 'agent');
  assert.equal(nameClash('agent-2', ['web', 'agent']), undefined);
  assert.match(
    nameClashProblem('Agent', 'agent', 'Simulator'),
    /"agent" exists already on Simulator; .*differ only in case/,
  );
  assert.equal(
    nameClashProblem('agent', 'agent', 'Simulator'),
    'A sandbox named "agent" exists already on Simulator.',
  );
});
