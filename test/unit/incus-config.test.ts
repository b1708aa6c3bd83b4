import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { incusConfigFromPixels, remoteUrl } from '../../src/backends/incus/config';
import { ValidationError } from '../../src/core/errors';

test('pixels [incus] with a socket', () => {
  assert.deepEqual(incusConfigFromPixels({ socket: '/run/incus/unix.socket', project: 'dev' }), {
    serverId: 'incus',
    socketPath: '/run/incus/unix.socket',
    url: undefined,
    clientCert: undefined,
    clientKey: undefined,
    serverCert: undefined,
    project: 'dev',
  });
});

test('pixels [incus] with a remote and certificates (~ expanded)', () => {
  const c = incusConfigFromPixels(
    {
      remote: 'nas.lan',
      client_cert: '~/.config/incus/client.crt',
      client_key: '~/.config/incus/client.key',
      server_cert: '/etc/pixels/nas.crt',
    },
    'nas',
  );
  assert.equal(c.serverId, 'nas');
  assert.equal(c.url, 'https://nas.lan:8443');
  assert.equal(c.socketPath, undefined);
  assert.equal(c.clientCert, `${homedir()}/.config/incus/client.crt`);
  assert.equal(c.serverCert, '/etc/pixels/nas.crt');
});

test('remote forms', () => {
  assert.equal(remoteUrl('https://h:9443/'), 'https://h:9443');
  assert.equal(remoteUrl('h:9443'), 'https://h:9443');
  assert.equal(remoteUrl('10.0.0.2'), 'https://10.0.0.2:8443');
  assert.throws(() => remoteUrl('http://h:8443'), ValidationError);
  assert.throws(() => incusConfigFromPixels({ socket: 42 }), /\[incus\] socket must be a string/);
});
