// The MCP server's transport and lifecycle rules on a host with no server configured (no container needed):
// the SDK client connects and pings; HTTP-level refusals (401 without the token, 403 for a browser origin, 406 /
// 415 for wrong headers, 400 for bad JSON, an unsupported protocol version or a missing session, 404 for an unknown
// session, 405 for GET); JSON-RPC errors for unknown methods and invalid messages; a tool's failure is an isError
// result that says what to do.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { AgentHost } from '../../src/agent/host';
import { McpHttpServer } from '../../src/agent/mcp/http';
import { AgentToolCatalog } from '../../src/agent/tools';

const TOKEN = 'unit-token-abcdef0123456789';

const noServers: AgentHost = {
  servers: () => [],
  backend: () => Promise.reject(new Error('no backend in this test')),
  runner: () => Promise.reject(new Error('no runner in this test')),
  workflows: {
    create: () => Promise.reject(new Error('unused')),
    clone: () => Promise.reject(new Error('unused')),
    restore: () => Promise.reject(new Error('unused')),
    destroy: () => Promise.reject(new Error('unused')),
  },
};

describe('MCP transport and lifecycle', () => {
  let server: McpHttpServer;
  const json = { Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' };
  const auth = { ...json, Authorization: `Bearer ${TOKEN}` };
  const initBody = (version: string) =>
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
  const post = (body: string, headers: Record<string, string>) =>
    fetch(server.url(), { method: 'POST', headers, body });
  async function session(version = '2025-11-25'): Promise<string> {
    const res = await post(initBody(version), auth);
    assert.equal(res.status, 200);
    return res.headers.get('mcp-session-id')!;
  }

  before(async () => {
    server = new McpHttpServer({
      catalog: new AgentToolCatalog(noServers),
      token: TOKEN,
      identity: { name: 'pixels-vscode', title: 'Pixels', version: '0.0.0', instructions: 'test' },
      port: 0,
    });
    await server.listen();
  });

  after(() => server.close());

  test('the SDK client connects, pings, lists tools; a tool failure is an isError result', async () => {
    const client = new Client({ name: 'unit', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url()), {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
      }),
    );
    try {
      assert.deepEqual(await client.ping(), {});
      assert.equal((await client.listTools()).tools.length, 16);
      const r = (await client.callTool({ name: 'list_sandboxes', arguments: {} })) as {
        isError: boolean;
        content: Array<{ text: string }>;
      };
      assert.equal(r.isError, true);
      assert.match(r.content[0]!.text, /No Pixels server is configured.*Add Server/);
    } finally {
      await client.close();
    }
  });

  test('version negotiation: a known version is kept, an unknown one gets the newest', async () => {
    for (const [asked, got] of [
      ['2025-06-18', '2025-06-18'],
      ['2025-03-26', '2025-03-26'],
      ['2030-01-01', '2025-11-25'],
    ]) {
      const res = await post(initBody(asked!), auth);
      const body = (await res.json()) as { result: { protocolVersion: string; capabilities: object } };
      assert.equal(body.result.protocolVersion, got);
      assert.deepEqual(body.result.capabilities, { tools: { listChanged: false } });
    }
  });

  test('HTTP refusals', async () => {
    assert.equal((await post(initBody('2025-11-25'), json)).status, 401);
    assert.equal((await post(initBody('2025-11-25'), { ...json, Authorization: 'Bearer nope' })).status, 401);
    assert.equal(
      (await post(initBody('2025-11-25'), { ...auth, Origin: 'https://evil.example' })).status,
      403,
    );
    assert.equal(
      (await post(initBody('2025-11-25'), { ...auth, Origin: 'http://localhost:3000' })).status,
      200,
    );
    assert.equal((await post(initBody('2025-11-25'), { ...auth, Accept: 'application/json' })).status, 406);
    assert.equal((await post(initBody('2025-11-25'), { ...auth, 'Content-Type': 'text/plain' })).status, 415);
    const bad = await post('{not json', auth);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: number } }).error.code, -32700);
    const id = await session();
    const ping = '{"jsonrpc":"2.0","id":2,"method":"ping"}';
    assert.equal((await post(ping, auth)).status, 400, 'no session id');
    assert.equal((await post(ping, { ...auth, 'Mcp-Session-Id': 'unknown' })).status, 404);
    assert.equal(
      (await post(ping, { ...auth, 'Mcp-Session-Id': id, 'MCP-Protocol-Version': '1.0' })).status,
      400,
    );
    assert.equal((await fetch(server.url(), { headers: { ...auth, 'Mcp-Session-Id': id } })).status, 405);
    assert.equal(
      (await fetch(server.url().replace('/mcp', '/other'), { method: 'POST', headers: auth })).status,
      404,
    );
  });

  test('JSON-RPC errors: unknown method, invalid message, unknown tool; batches answered in one body', async () => {
    const id = await session();
    const headers = { ...auth, 'Mcp-Session-Id': id, 'MCP-Protocol-Version': '2025-11-25' };
    const unknown = (await (
      await post('{"jsonrpc":"2.0","id":3,"method":"resources/list"}', headers)
    ).json()) as {
      error: { code: number };
    };
    assert.equal(unknown.error.code, -32601);
    const invalid = (await (await post('{"jsonrpc":"1.0","id":4,"method":"ping"}', headers)).json()) as {
      id: number;
      error: { code: number };
    };
    assert.deepEqual([invalid.id, invalid.error.code], [4, -32600]);
    const tool = (await (
      await post('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope"}}', headers)
    ).json()) as { error: { code: number; message: string } };
    assert.equal(tool.error.code, -32602);
    assert.match(tool.error.message, /Unknown tool: nope/);
    const batch = (await (
      await post(
        '[{"jsonrpc":"2.0","id":6,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":7,"method":"ping"}]',
        headers,
      )
    ).json()) as Array<{ id: number; result: object }>;
    assert.deepEqual(batch.map((r) => r.id).sort(), [6, 7]);
    assert.equal((await post('{"jsonrpc":"2.0","method":"notifications/initialized"}', headers)).status, 202);
    assert.equal((await fetch(server.url(), { method: 'DELETE', headers })).status, 200);
    assert.equal((await post('{"jsonrpc":"2.0","id":8,"method":"ping"}', headers)).status, 404);
  });
});

describe('MCP progress for long tool calls', () => {
  let server: McpHttpServer;
  let created = 0;
  // A host whose create workflow reports two steps, then says nothing for a while (as an exec of a long command).
  const slowCreate: AgentHost = {
    ...noServers,
    servers: () => [{ id: 'one', label: 'One' }],
    workflows: {
      ...noServers.workflows,
      create: async (_serverId, name, _image, call) => {
        call?.progress?.(`Creating sandbox "${name}"`);
        call?.progress?.(`Creating sandbox "${name}": provisioning`);
        await new Promise((resolve) => setTimeout(resolve, 400));
        created++;
        return { name, instanceName: `px-${name}`, status: 'running', ipv4: '10.0.0.9' };
      },
    },
  };

  before(async () => {
    server = new McpHttpServer({
      catalog: new AgentToolCatalog(slowCreate),
      token: TOKEN,
      identity: { name: 'pixels-vscode', title: 'Pixels', version: '0.0.0', instructions: 'test' },
      port: 0,
      progressHeartbeatMs: 120,
    });
    await server.listen();
  });

  after(() => server.close());

  test('the SDK client with onprogress gets each step, then "still running", increasing, then the result', async () => {
    const client = new Client({ name: 'unit', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url()), {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
      }),
    );
    try {
      const seen: Array<{ progress: number; message?: string }> = [];
      const r = (await client.callTool({ name: 'create_sandbox', arguments: { name: 'slow' } }, undefined, {
        onprogress: (p) => seen.push({ progress: p.progress, message: p.message }),
        // The point of it: a client's timeout shorter than the call, reset by each notification.
        timeout: 300,
        resetTimeoutOnProgress: true,
      })) as unknown as { isError: boolean; structuredContent: { name: string; ip: string } };
      assert.equal(r.isError, false);
      assert.deepEqual([r.structuredContent.name, r.structuredContent.ip], ['slow', '10.0.0.9']);
      assert.deepEqual(
        seen.slice(0, 2).map((p) => p.message),
        ['Creating sandbox "slow"', 'Creating sandbox "slow": provisioning'],
      );
      assert.ok(
        seen.slice(2).some((p) => /^create_sandbox: still running \(\d+ s\)$/.test(p.message ?? '')),
        `a heartbeat while the call said nothing: ${JSON.stringify(seen)}`,
      );
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress > seen[i - 1]!.progress);
      assert.equal(created, 1);
    } finally {
      await client.close();
    }
  });

  test('on the wire: a text/event-stream answer, notifications before the response; without a progress token, JSON', async () => {
    const headers = {
      Accept: 'application/json, text/event-stream',
      'Content-Type': 'application/json',
      Authorization: `Bearer ${TOKEN}`,
    };
    const init = await fetch(server.url(), {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    });
    const session = { ...headers, 'Mcp-Session-Id': init.headers.get('mcp-session-id')! };
    const call = (id: number, meta: object | undefined) =>
      fetch(server.url(), {
        method: 'POST',
        headers: session,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: {
            name: 'create_sandbox',
            arguments: { name: `wire${id}` },
            ...(meta ? { _meta: meta } : {}),
          },
        }),
      });
    const streamed = await call(2, { progressToken: 'tok-1' });
    assert.equal(streamed.status, 200);
    assert.match(streamed.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = (await streamed.text())
      .split('\n\n')
      .filter((e) => e.trim())
      .map((e) => {
        assert.match(e, /^event: message\ndata: /);
        return JSON.parse(e.slice(e.indexOf('data: ') + 6)) as {
          id?: number;
          method?: string;
          params?: { progressToken: string; progress: number };
        };
      });
    const last = events.at(-1)!;
    assert.equal(last.id, 2, 'the response comes last');
    const notes = events.slice(0, -1);
    assert.ok(notes.length >= 2);
    for (const n of notes) {
      assert.equal(n.method, 'notifications/progress');
      assert.equal(n.params?.progressToken, 'tok-1');
    }
    const plain = await call(3, undefined);
    assert.match(plain.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await plain.json()) as { id: number }).id, 3);
  });
});
