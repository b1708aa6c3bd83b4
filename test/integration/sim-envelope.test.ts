// The simulator's JSON-RPC envelope, limits and HTTP endpoints, over a real socket with a raw client.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startSimulator, type SimServer } from '../sim/index.js';
import { RawClient } from '../sim/rawclient.js';

const KEY = `1-${'a'.repeat(64)}`;

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('simulator envelope', () => {
  let sim: SimServer;
  before(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: KEY });
  });
  after(async () => sim.close());

  it('answers unparsable JSON with -32700 and id null', async () => {
    const c = await RawClient.connect(sim.url);
    c.sendText('{"jsonrpc": "2.0", "id": 1,');
    const f = await c.waitFor((x) => 'error' in x);
    assert.equal(f.id, null);
    assert.equal((f.error as { code: number }).code, -32700);
    c.close();
  });

  it('refuses batches and non-object messages with -32700', async () => {
    const c = await RawClient.connect(sim.url);
    c.sendText('[{"jsonrpc":"2.0","id":1,"method":"core.ping"}]');
    const batch = await c.waitFor((x) => 'error' in x);
    assert.deepEqual(batch, {
      jsonrpc: '2.0',
      error: { code: -32700, message: 'Batch messages are not supported at this time' },
      id: null,
    });
    c.sendText('42');
    await c.waitFor(
      (x) => (x.error as { message?: string } | undefined)?.message === 'Invalid Message Format',
    );
    c.close();
  });

  it('validates the envelope with the middleware messages', async () => {
    const c = await RawClient.connect(sim.url);
    const cases: [Record<string, unknown>, string][] = [
      [{ id: 1, method: 'core.ping' }, "Missing 'jsonrpc' member"],
      [
        { jsonrpc: '1.0', id: 2, method: 'core.ping' },
        "'jsonrpc' member must be of type string and must be exactly '2.0'",
      ],
      [{ jsonrpc: '2.0', id: 3 }, "Missing 'method' member"],
      [{ jsonrpc: '2.0', id: 4, method: '' }, "'method' member must be of type string"],
      [
        { jsonrpc: '2.0', id: 5, method: 'core.ping', params: { a: 1 } },
        "'params' member must be of type array",
      ],
      [
        { jsonrpc: '2.0', id: 6.5, method: 'core.ping' },
        "'id' member must be of type null, string or number",
      ],
    ];
    for (const [message, text] of cases) {
      c.sendText(JSON.stringify(message));
      const f = await c.waitFor((x) => x.id === message.id && 'error' in x);
      assert.deepEqual(f.error, { code: -32600, message: text });
    }
    c.close();
  });

  it('echoes string, integer and null ids, and sends nothing for notifications', async () => {
    const c = await RawClient.connect(sim.url);
    c.sendText(JSON.stringify({ jsonrpc: '2.0', method: 'core.ping' }));
    c.sendText(JSON.stringify({ jsonrpc: '2.0', method: 'no.such' }));
    c.sendText(JSON.stringify({ jsonrpc: '1.0', method: 'core.ping' }));
    for (const id of ['abc', 7, null]) {
      c.sendText(JSON.stringify({ jsonrpc: '2.0', id, method: 'core.ping' }));
      const f = await c.waitFor((x) => x.id === id && 'result' in x);
      assert.equal(f.result, 'pong');
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.frames.length, 3, `only the three replies: ${JSON.stringify(c.frames)}`);
    c.close();
  });

  it('answers an unknown method with -32601 and no data, even before login', async () => {
    const c = await RawClient.connect(sim.url);
    const r = await c.request('virt.instance.frobnicate', []);
    assert.deepEqual(r.error, { code: -32601, message: 'Method does not exist' });
    c.close();
  });

  it('closes the socket with 1003 on a binary frame', async () => {
    const c = await RawClient.connect(sim.url);
    c.ws.send(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"core.ping"}'), { binary: true });
    const closed = await c.closed;
    assert.equal(closed.code, 1003);
  });

  it('closes an anonymous socket over 8 kB with 1007', async () => {
    const c = await RawClient.connect(sim.url);
    c.sendText(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'core.ping', params: ['x'.repeat(8200)] }));
    assert.deepEqual(await c.closed, {
      code: 1007,
      reason: 'Anonymous connection max message length is 8 kB',
    });
  });

  it('closes an authenticated socket over 64 kB with 1009, but lets file_receive send up to 2 MiB', async () => {
    await sim.engine.createInstance({
      name: 'px-env',
      image: 'ubuntu/24.04',
      cpu: null,
      memory: null,
      environment: {},
      autostart: true,
      privilegedMode: false,
      storagePool: 'tank',
      devices: [],
    });
    await sim.engine.startInstance('px-env');
    const c = await RawClient.connect(sim.url);
    await c.login(KEY);
    const content = Buffer.alloc(1_400_000, 7).toString('base64'); // ~1.87 MB of JSON
    const path = '/var/lib/incus/storage-pools/tank/containers/px-env/rootfs/root/big.bin';
    assert.equal(await c.call('filesystem.file_receive', [path, content, { mode: 0o600 }]), true);
    const stored = await sim.engine.readFile('tank/.ix-virt/containers/px-env', 'rootfs/root/big.bin');
    assert.equal(stored?.length, 1_400_000);
    c.sendText(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'core.ping', params: ['y'.repeat(70_000)] }));
    assert.deepEqual(await c.closed, { code: 1009, reason: 'Max message length is 64 kB' });

    const d = await RawClient.connect(sim.url);
    await d.login(KEY);
    d.sendText(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'filesystem.file_receive',
        params: [path, 'A'.repeat(2_100_000)],
      }),
    );
    assert.equal((await d.closed).code, 1009);
  });

  it('refuses more than 20 concurrent calls per connection with -32000', async () => {
    const c = await RawClient.connect(sim.url);
    await c.login(KEY);
    sim.faults.delayReplies(1000);
    try {
      const replies = await Promise.all(Array.from({ length: 25 }, () => c.request('core.ping', [], 5000)));
      const refused = replies.filter((r) => r.error);
      assert.equal(refused.length, 5);
      for (const r of refused) {
        assert.deepEqual(r.error, {
          code: -32000,
          message: 'Maximum number of concurrent calls (20) has exceeded',
        });
      }
      assert.equal(replies.filter((r) => r.result === 'pong').length, 20);
    } finally {
      sim.faults.reset();
    }
    c.close();
  });

  it('serves GET /api/versions, /api/boot_id, pinned API paths, and 404 elsewhere', async () => {
    const base = `http://127.0.0.1:${sim.port}`;
    const versions = await get(`${base}/api/versions`);
    assert.equal(versions.status, 200);
    assert.deepEqual(JSON.parse(versions.body).slice(-2), ['v25.10.0', 'v25.10.1']);
    assert.match(JSON.parse((await get(`${base}/api/boot_id`)).body), /^[0-9a-f-]{36}$/);
    assert.equal((await get(`${base}/nope`)).status, 404);
    const pinned = await RawClient.connect(`ws://127.0.0.1:${sim.port}/api/v25.04.2`);
    assert.equal((await pinned.request('core.ping')).result, 'pong');
    pinned.close();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${sim.port}/api/v99`);
        ws.on('open', resolve);
        ws.on('error', reject);
      }),
      /404/,
    );
  });

  it('counts calls and live connections', async () => {
    const before = sim.callCount('core.ping');
    const a = await RawClient.connect(sim.url);
    const b = await RawClient.connect(sim.url);
    await a.call('core.ping');
    await b.call('core.ping');
    assert.equal(sim.callCount('core.ping'), before + 2);
    assert.ok(sim.connections() >= 2);
    a.close();
    b.close();
    await Promise.all([a.closed, b.closed]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sim.connections(), 0);
  });
});
