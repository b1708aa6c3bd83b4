// The lab keeps container traffic on this machine: the bridge has no NAT, and the host nft table drops anything
// forwarded off the bridge. A sandbox reaches the host's bridge address, and nothing beyond it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import type { Lab } from '../../lab/lab';
import { labBackend, removeTestInstances, testPrefix, waitForIpv4 } from './helpers';

function dropCounter(): number {
  const out = execFileSync('nft', ['list', 'table', 'inet', 'pixels_lab_contain'], { encoding: 'utf8' });
  const m = /oifname != "[^"]+" counter packets (\d+)/.exec(out);
  assert.ok(m, `the host nft table pixels_lab_contain drops forwarded bridge traffic:\n${out}`);
  return Number(m[1]);
}

describe('the lab keeps container traffic on this machine', { timeout: 120_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-net`;
  let lab: Lab;
  let backend: IncusBackend;
  let server: http.Server;

  before(async () => {
    ({ lab, backend } = await labBackend());
    server = http.createServer((_req, res) => res.end('hello-from-the-bridge'));
    await new Promise<void>((r) => server.listen(0, lab.bridgeIpv4.split('/')[0], r));
  });
  after(async () => {
    server?.close();
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
  });

  test('no NAT on the bridge, for IPv4 and IPv6', async () => {
    const client = new IncusRestClient({ socketPath: lab.socket });
    try {
      const net = await client.call<{ config: Record<string, string> }>('GET', `/1.0/networks/${lab.bridge}`);
      assert.equal(net.metadata.config['ipv4.nat'], 'false');
      assert.equal(net.metadata.config['ipv6.nat'], 'false');
    } finally {
      client.close();
    }
  });

  test('a sandbox reaches the bridge address but nothing outside; the host table drops it', async () => {
    await backend.create({ name, image: lab.image });
    const s = await waitForIpv4(backend, name);
    assert.ok(s.ipv4);
    const port = (server.address() as AddressInfo).port;
    const host = lab.bridgeIpv4.split('/')[0];
    const inside = await backend.exec(name, ['curl', '-sS', '-m', '5', `http://${host}:${port}/`]);
    assert.equal(inside.stdout.toString(), 'hello-from-the-bridge', inside.stderr.toString());

    // The host's own default gateway is the first hop off this machine.
    const gateway = /default via (\S+)/.exec(execFileSync('ip', ['route'], { encoding: 'utf8' }))?.[1];
    assert.ok(gateway, 'the host has a default route');
    const before = dropCounter();
    const outside = await backend.exec(name, ['curl', '-sS', '-m', '3', `http://${gateway}:9/`]);
    assert.notEqual(outside.exitCode, 0, 'the gateway must not be reachable from a sandbox');
    assert.ok(dropCounter() > before, 'the host nft table dropped the packets');
  });
});
