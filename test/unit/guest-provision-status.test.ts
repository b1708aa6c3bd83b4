// "Show Provisioning Status": the guest script's output (ours: markers; the pixels CLI: zmx sessions, sentinel)
// read back into facts, in the words of `pixels status`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  describeProvisioningStatus,
  parseProvisioningStatus,
  provisioningStatusScript,
} from '../../src/guest/provision/status';

test('the status script is valid bash', () => {
  const r = spawnSync('bash', ['-n'], { input: provisioningStatusScript() });
  assert.equal(r.status, 0, r.stderr.toString());
});

test('pixels CLI sessions (zmx 0.5.0 and 0.4 field names): running, done, failed; other sessions ignored', () => {
  const s = parseProvisioningStatus(
    [
      'markers=',
      'cli-script=1',
      'zmx=1',
      'zmx:name=px-devtools\tpid=12\tended=1767000000\texit_code=0',
      'zmx:name=px-egress\tpid=13\tended=1767000001\texit_code=2',
      'zmx:session_name=px-setup\ttask_ended_at=0',
      'zmx:name=console\tpid=14',
    ].join('\n'),
  );
  assert.deepEqual(s.cliSteps, [
    { name: 'px-devtools', state: 'done', exitCode: 0 },
    { name: 'px-egress', state: 'failed', exitCode: 2 },
    { name: 'px-setup', state: 'running' },
  ]);
  assert.deepEqual(describeProvisioningStatus(s), [
    'pixels CLI step px-devtools: done (exit 0)',
    'pixels CLI step px-egress: failed (exit 2)',
    'pixels CLI step px-setup: running',
  ]);
});

test('no sessions: the sentinel says complete, the script alone in progress, else nothing found', () => {
  const say = (out: string) => describeProvisioningStatus(parseProvisioningStatus(out));
  assert.deepEqual(say('markers=\ncli-sentinel=1\ncli-script=1\nzmx=1\n'), [
    'pixels CLI: Provisioning complete',
  ]);
  assert.deepEqual(say('markers=\ncli-script=1\n'), [
    'pixels CLI: Provisioning in progress (zmx not installed)',
  ]);
  assert.deepEqual(say('markers=\n'), ['No provisioning steps found']);
  assert.deepEqual(say('markers=user packages ssh \n'), ['Pixels for VS Code: done user, packages, ssh']);
});
