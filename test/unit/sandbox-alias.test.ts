// Which sandbox a Remote-SSH window is: the authority back to (server, name), for the sandbox-window status item.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sandboxAlias, sandboxOfRemoteAuthority } from '../../src/core/sandbox-alias';
import { sandboxWindowText } from '../../src/vscode/format';

const hex = (host: string) => Buffer.from(JSON.stringify({ hostName: host })).toString('hex');

test('our alias, written as is or hex-encoded by Remote-SSH, maps back to its server and sandbox', () => {
  assert.equal(sandboxAlias('sim', 'agent'), 'px-agent.sim');
  assert.deepEqual(sandboxOfRemoteAuthority('ssh-remote+px-agent.sim', ['sim', 'lab']), {
    serverId: 'sim',
    name: 'agent',
  });
  assert.deepEqual(sandboxOfRemoteAuthority(`ssh-remote+${hex('px-Agent-2.lab')}`, ['sim', 'lab']), {
    serverId: 'lab',
    name: 'Agent-2',
  });
});

test('server ids with dots: the longest id that matches wins', () => {
  assert.deepEqual(sandboxOfRemoteAuthority('ssh-remote+px-web.nas.home', ['home', 'nas.home']), {
    serverId: 'nas.home',
    name: 'web',
  });
});

test('every other window is not a sandbox window', () => {
  for (const authority of [
    undefined,
    '',
    'ssh-remote+myhost',
    'ssh-remote+px-web.other', // not a configured server
    'ssh-remote+px-.sim', // no name
    'ssh-remote+px-1web.sim', // not a valid sandbox name
    'wsl+Ubuntu',
    'dev-container+abc',
    'px-web.sim', // no ssh-remote
  ])
    assert.equal(sandboxOfRemoteAuthority(authority, ['sim']), undefined, String(authority));
});

test('status item text: name, egress mode, newest checkpoint age', () => {
  const now = new Date('2026-01-01T12:00:00Z');
  assert.equal(
    sandboxWindowText('agent', 'agent', new Date('2026-01-01T11:55:00Z'), now),
    '$(vm) agent · egress agent · checkpoint 5 min ago',
  );
  assert.equal(
    sandboxWindowText('web', undefined, undefined, now),
    '$(vm) web · egress unknown · no checkpoint',
  );
});
