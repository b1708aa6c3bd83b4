// Incus cluster members as the tree and the commands describe them, and the placement setting's validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memberAwayReason, placementChoices } from '../../src/backends/incus/members';
import { serverProblem } from '../../src/core/config';
import type { ServerConfig } from '../../src/core/config';

test('an online member is not away; offline, evacuated and missing ones say why', () => {
  assert.equal(
    memberAwayReason({ server_name: 'm1', status: 'Online', message: 'Fully operational' }, 'm1'),
    undefined,
  );
  assert.equal(
    memberAwayReason(
      {
        server_name: 'm3',
        status: 'Offline',
        message: 'No heartbeat for 14.842323796s (2026-12-03 16:48:07 +0000 UTC)',
      },
      'm3',
    ),
    'cluster member m3 is offline: no heartbeat for 15 s',
  );
  assert.equal(
    memberAwayReason(
      { server_name: 'm2', status: 'Evacuated', message: 'Unavailable due to maintenance' },
      'm2',
    ),
    'cluster member m2 is evacuated: Unavailable due to maintenance',
  );
  assert.equal(memberAwayReason(undefined, 'gone'), 'cluster member gone is no longer in the cluster');
});

test('placement choices: members in the server order, groups once each, sorted', () => {
  assert.deepEqual(
    placementChoices([
      { server_name: 'b', groups: ['default', 'fast'] },
      { server_name: 'a', groups: ['default'] },
    ]),
    { members: ['b', 'a'], groups: ['default', 'fast'] },
  );
});

test('placement setting: auto, ask, a member or @group on Incus; nothing else, and not on TrueNAS', () => {
  const incus = (placement: string): ServerConfig => ({
    id: 'c',
    kind: 'incus',
    label: 'c',
    source: 'settings',
    placement,
  });
  for (const ok of ['auto', 'ask', 'node2', '@fast', 'pxm1'])
    assert.equal(serverProblem(incus(ok)), undefined, ok);
  for (const bad of ['', '@', 'two words', 'x/y', '-lead'])
    assert.match(serverProblem(incus(bad)) ?? '', /has placement ".*"; use "auto"/, bad);
  assert.match(
    serverProblem({
      id: 't',
      kind: 'truenas',
      label: 't',
      source: 'settings',
      host: 'nas',
      placement: 'node2',
    }) ?? '',
    /placement is an Incus cluster setting/,
  );
});
