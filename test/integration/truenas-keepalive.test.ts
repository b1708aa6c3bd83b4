// Ping keepalive: a live server keeps the one connection; a peer that stops answering pings is dropped and the
// client reconnects by itself while it still waits for something.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { TrueNASClient } from '../../src/backends/truenas/client';
import { API_KEY, clientFor, startRig, waitFor } from './truenas-fixtures';

test('a healthy server answers pings: the same connection stays up across many intervals', async () => {
  const rig = await startRig('25.10');
  const client = clientFor(rig.sim, API_KEY, { pingIntervalMs: 40 });
  try {
    await client.call('virt.instance.query', []);
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(client.connected);
    await client.call('virt.instance.query', []);
    assert.equal(rig.sim.callCount('auth.login_ex'), 1, 'no reconnect was needed');
    assert.equal(rig.sim.connections(), 1);
  } finally {
    client.dispose();
    await rig.close();
  }
});

test('a peer that stops answering pings is dropped and the client reconnects', async () => {
  // The real boundary here is the network peer: a bare WebSocket server that speaks just enough JSON-RPC
  // (login, subscribe, query) and never answers control pings.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as { id: string; method: string };
      const result =
        msg.method === 'auth.login_ex'
          ? { response_type: 'SUCCESS' }
          : msg.method === 'core.subscribe'
            ? 'sub-id'
            : [];
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    });
  });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as AddressInfo).port;
  const client = new TrueNASClient(
    {
      host: '127.0.0.1',
      port,
      secure: false,
      username: 'truenas_admin',
      pingIntervalMs: 50,
      backoffBaseMs: 20,
    },
    API_KEY,
  );
  const changes: boolean[] = [];
  client.onConnectionChange((up) => changes.push(up));
  client.onUpdate(() => {}); // someone listens for events, so the client reconnects on its own
  try {
    await client.call('virt.instance.query', []);
    await waitFor(() => changes.includes(false), 2000, 'the silent peer to be dropped');
    await waitFor(() => connections >= 2 && client.connected, 2000, 'the background reconnect');
    assert.deepEqual(changes.slice(0, 3), [true, false, true]);
  } finally {
    client.dispose();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
  }
});
