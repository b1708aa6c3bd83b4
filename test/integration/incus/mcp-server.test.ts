// The MCP server over its real transport, driven by the official MCP TypeScript SDK client against a real lab
// container: lifecycle and version negotiation, ping, tools/list with annotations, exec (exit code, stderr, cwd,
// env, timeout, truncation), the file tools, checkpoint and restore, a bad input (an isError result the model
// can act on), an unknown tool (a protocol error), and requests without or with a wrong token refused with 401.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { NotFoundError } from '../../../src/core/errors';
import type { AgentHost } from '../../../src/agent/host';
import { McpHttpServer } from '../../../src/agent/mcp/http';
import { backendRunner } from '../../../src/agent/runner';
import { AgentToolCatalog } from '../../../src/agent/tools';
import type { Lab } from '../../lab/lab';
import { cloneSandbox } from '../../../src/workflows/clone';
import { createSandbox } from '../../../src/workflows/create';
import { destroySandbox } from '../../../src/workflows/destroy';
import { restoreCheckpoint } from '../../../src/workflows/restore';
import { plainRunPhase } from '../../../src/workflows/progress';
import { workflowHarness, type Harness } from '../workflows/context';
import { agentBases, agentLifecycle } from '../../../src/agent/bases';
import {
  AgentSandboxStore,
  BaseService,
  BUILTIN_BASES,
  DEFAULT_LIFECYCLE,
  systemClock,
} from '../../../src/bases/index';
import { backendExecutor } from '../../../src/guest/index';
import { labBackend, removeTestInstances, testPrefix, waitForIpv4 } from './helpers';

const TOKEN = 'test-token-0123456789abcdef';

/** The lab as an agent host: one Incus server, commands through the Incus exec API, the shared workflows. */
function labHost(
  backend: IncusBackend,
  h: Harness,
  image: string,
  basePrefix: string,
  agents: AgentSandboxStore,
): AgentHost {
  const service = new BaseService({
    workflows: {
      backend: () => Promise.resolve(backend),
      create: async (_server, request) => {
        await createSandbox(h.ctx, {
          ...request,
          cpu: '1',
          memoryMiB: 512,
          egress: 'unrestricted',
          provision: false,
        });
      },
      clone: (_server, source, newName) =>
        cloneSandbox(h.ctx, { source: source.sandbox, checkpoint: source.checkpoint, name: newName }),
      executor: (_server, name) => Promise.resolve(backendExecutor(backend, name)),
      destroy: (_server, name) => destroySandbox(h.ctx, { name }),
    },
    config: () => ({ bases: [...BUILTIN_BASES], basePrefix, lifecycle: DEFAULT_LIFECYCLE }),
    agents: () => Promise.resolve(agents),
  });
  return {
    bases: agentBases(service),
    lifecycle: agentLifecycle(() => Promise.resolve(agents)),
    servers: () => [{ id: 'lab', label: 'Incus lab' }],
    backend: () => Promise.resolve(backend),
    runner: (ref) => Promise.resolve(backendRunner(backend, ref.name, backend.exec)),
    workflows: {
      // As the editor's host does: the call's phases and steps go to its progress sink.
      create: (_server, name, given, call) =>
        createSandbox(
          {
            ...h.ctx,
            run: plainRunPhase(call?.signal, (e) =>
              call?.progress?.(e.message ? `${e.phase}: ${e.message}` : e.phase),
            ),
          },
          {
            name,
            image: given ?? image,
            cpu: '1',
            memoryMiB: 512,
            egress: 'unrestricted',
            provision: false,
          },
        ),
      clone: (source, checkpoint, newName) =>
        cloneSandbox(h.ctx, { source: source.name, checkpoint, name: newName }),
      restore: async (ref, checkpoint) => {
        await restoreCheckpoint(h.ctx, { name: ref.name, label: checkpoint });
      },
      destroy: (ref) => destroySandbox(h.ctx, { name: ref.name }),
    },
  };
}

interface TextResult {
  isError?: boolean;
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
}

describe('MCP server (SDK client over Streamable HTTP, real container)', { timeout: 240_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-m`;
  let lab: Lab;
  let backend: IncusBackend;
  let server: McpHttpServer;
  let client: Client;
  let harness: Harness;
  let agents: AgentSandboxStore;

  async function call(tool: string, args: Record<string, unknown>): Promise<TextResult> {
    return (await client.callTool({ name: tool, arguments: args })) as TextResult;
  }

  async function ok(tool: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await call(tool, args);
    assert.equal(r.isError, false, `${tool} failed: ${r.content[0]?.text}`);
    return r.structuredContent!;
  }

  async function fails(tool: string, args: Record<string, unknown>, pattern: RegExp): Promise<void> {
    const r = await call(tool, args);
    assert.equal(r.isError, true, `${tool} should fail: ${JSON.stringify(r.structuredContent)}`);
    assert.match(r.content[0]?.text ?? '', pattern);
  }

  before(async () => {
    ({ lab, backend } = await labBackend());
    harness = workflowHarness(backend, lab.socket);
    agents = await AgentSandboxStore.open(undefined, systemClock);
    server = new McpHttpServer({
      catalog: new AgentToolCatalog(labHost(backend, harness, lab.image, `${prefix}-base-`, agents)),
      token: TOKEN,
      identity: { name: 'pixels-vscode', title: 'Pixels', version: '0.0.0-test', instructions: 'test' },
      port: 0,
    });
    await server.listen();
    client = new Client({ name: 'pixels-test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url()), {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
      }),
    );
  });

  after(async () => {
    await client?.close();
    await server?.close();
    harness?.dispose();
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
  });

  test('initialize negotiated the newest version; ping answers', async () => {
    assert.equal(client.getServerVersion()?.name, 'pixels-vscode');
    assert.deepEqual(client.getServerCapabilities()?.tools, { listChanged: false });
    assert.deepEqual(await client.ping(), {});
  });

  test('tools/list: pixels names and arguments, read-only tools annotated', async () => {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const n of [
      'create_sandbox',
      'destroy_sandbox',
      'start_sandbox',
      'stop_sandbox',
      'list_sandboxes',
      'list_bases',
      'exec',
      'write_file',
      'read_file',
      'list_files',
      'edit_file',
      'delete_file',
      'list_checkpoints',
      'create_checkpoint',
      'restore_checkpoint',
      'clone_sandbox',
    ])
      assert.ok(byName.has(n), `missing tool ${n}`);
    for (const n of ['list_sandboxes', 'list_bases', 'list_checkpoints', 'read_file', 'list_files'])
      assert.equal(byName.get(n)!.annotations?.readOnlyHint, true, n);
    for (const n of ['exec', 'destroy_sandbox', 'restore_checkpoint', 'delete_file'])
      assert.deepEqual(
        [byName.get(n)!.annotations?.readOnlyHint, byName.get(n)!.annotations?.destructiveHint],
        [false, true],
        n,
      );
    assert.deepEqual(byName.get('exec')!.inputSchema.required, ['name', 'command']);
    assert.deepEqual(Object.keys(byName.get('exec')!.inputSchema.properties ?? {}).sort(), [
      'command',
      'cwd',
      'env',
      'name',
      'server',
      'timeout_sec',
    ]);
  });

  test('create_sandbox (the shared create workflow) with progress, then list_sandboxes shows it', async () => {
    const steps: string[] = [];
    const r0 = (await client.callTool({ name: 'create_sandbox', arguments: { name } }, undefined, {
      onprogress: (p) => steps.push(p.message ?? ''),
    })) as TextResult;
    assert.equal(r0.isError, false, `create_sandbox failed: ${r0.content[0]?.text}`);
    const made = r0.structuredContent!;
    assert.deepEqual([made.name, made.status], [name, 'running']);
    assert.ok(
      steps.some((s) => s.startsWith(`Creating sandbox "${name}"`)),
      `the create phase as progress: ${JSON.stringify(steps)}`,
    );
    await waitForIpv4(backend, name);
    assert.equal(agents.get('lab', name)?.by, 'agent', 'an agent-made sandbox is under the lifecycle policy');
    const r = await ok('list_sandboxes', {});
    const mine = (r.sandboxes as Array<Record<string, unknown>>).find((s) => s.name === name);
    assert.equal(mine?.status, 'running');
  });

  test('list_bases: the built-ins, not built here; create_sandbox from one says to build it', async () => {
    const bases = (await ok('list_bases', {})).bases as Array<Record<string, unknown>>;
    assert.deepEqual(
      bases.map((b) => [b.name, b.status]),
      [
        ['dev', 'missing'],
        ['python', 'missing'],
        ['node', 'missing'],
      ],
    );
    await fails('create_sandbox', { base: 'dev' }, /Base "dev" is not built on this server.*Build it first/);
  });

  test('exec: exit code, stdout, stderr, cwd and env; a failing command is a result, not an error', async () => {
    const before = agents.get('lab', name)!.lastActivityAt;
    await new Promise((r) => setTimeout(r, 5));
    const r = await ok('exec', {
      name,
      command: ['sh', '-c', 'pwd; echo "$GREETING"; echo oops >&2; exit 3'],
      cwd: '/tmp',
      env: { GREETING: 'hello there' },
    });
    assert.equal(r.exit_code, 3);
    assert.equal(r.stdout, '/tmp\nhello there\n');
    assert.equal(r.stderr, 'oops\n');
    assert.equal(r.truncated, undefined);
    assert.ok(
      agents.get('lab', name)!.lastActivityAt > before,
      'a call in the sandbox restarts its idle time',
    );
    const envOnly = await ok('exec', {
      name,
      command: ['sh', '-c', 'echo "$A$B"'],
      env: { A: 'x', B: 'y=z' },
    });
    assert.equal(envOnly.stdout, 'xy=z\n');
  });

  test('exec: a timeout kills the command and says so; long output is cut and said', async () => {
    const slow = await ok('exec', { name, command: ['sleep', '30'], timeout_sec: 1 });
    assert.equal(slow.exit_code, 124);
    assert.match(String(slow.timed_out), /killed after 1 s/);
    const big = await ok('exec', {
      name,
      command: ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" x; echo END'],
    });
    assert.match(String(big.truncated), /only the end is shown/);
    assert.ok(String(big.stdout).endsWith('xEND\n'));
    assert.equal(String(big.stdout).length, 1024 * 1024);
  });

  test('files: write, read, edit, list, delete', async () => {
    const path = '/root/work/notes.txt';
    assert.deepEqual(await ok('write_file', { name, path, content: 'one two two\n', mode: '0600' }), {
      ok: true,
      bytes_written: 12,
    });
    assert.deepEqual(await ok('read_file', { name, path }), {
      content: 'one two two\n',
      truncated: false,
      size: 12,
    });
    assert.deepEqual(await ok('read_file', { name, path, max_bytes: 3 }), {
      content: 'one',
      truncated: true,
      size: 12,
    });
    await fails(
      'edit_file',
      { name, path, old_string: 'two', new_string: '2' },
      /occurs 2 times.*replace_all/,
    );
    assert.deepEqual(
      await ok('edit_file', { name, path, old_string: 'two', new_string: '2', replace_all: true }),
      {
        ok: true,
        replacements: 2,
      },
    );
    const stat = await ok('exec', { name, command: ['stat', '-c', '%a %u:%g', path] });
    assert.equal(stat.stdout, '600 1000:1000\n', 'an edit keeps mode and owner');
    const listed = (await ok('list_files', { name, path: '/root/work' })).entries as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(listed, [{ path, size: 8, mode: '600', is_dir: false }]);
    await fails('delete_file', { name, path: '/root/work' }, /is a directory.*recursive/);
    assert.deepEqual(await ok('delete_file', { name, path }), { ok: true });
    await fails('read_file', { name, path }, /does not exist.*list_files/);
  });

  test('checkpoint and restore: the file written after the checkpoint is gone', async () => {
    await ok('write_file', { name, path: '/root/kept.txt', content: 'before' });
    const cp = await ok('create_checkpoint', { name, label: 'mcp-one' });
    assert.equal(cp.label, 'mcp-one');
    await ok('write_file', { name, path: '/root/kept.txt', content: 'after' });
    const listed = await ok('list_checkpoints', { name });
    assert.deepEqual(
      (listed.checkpoints as Array<{ label: string }>).map((c) => c.label),
      ['mcp-one'],
    );
    assert.deepEqual(await ok('restore_checkpoint', { name, checkpoint: 'mcp-one' }), {
      ok: true,
      deleted_checkpoints: [],
    });
    if ((await backend.get(name)).status !== 'running') await backend.start(name);
    assert.equal((await ok('read_file', { name, path: '/root/kept.txt' })).content, 'before');
  });

  test('clone_sandbox from a checkpoint, destroy_sandbox', async () => {
    const clone = `${prefix}-k`;
    const made = await ok('clone_sandbox', { name, new_name: clone, checkpoint: 'mcp-one' });
    assert.equal(made.name, clone);
    assert.equal(agents.get('lab', clone)?.by, 'agent');
    await fails(
      'clone_sandbox',
      { name, new_name: `${prefix}-x`, checkpoint: 'nope' },
      /no checkpoint "nope".*list_checkpoints/,
    );
    assert.deepEqual(await ok('destroy_sandbox', { name: clone }), { ok: true });
    await assert.rejects(backend.get(clone), NotFoundError);
    assert.equal(agents.get('lab', clone), undefined, 'a destroyed sandbox leaves the lifecycle list');
  });

  test('bad input: an isError result that says what to fix; an unknown tool is a protocol error', async () => {
    await fails('exec', { name, command: 'ls -la' }, /command must be an array of strings.*call it again/);
    await fails('exec', { name }, /command is required/);
    await fails('read_file', { name, path: 'relative.txt' }, /not absolute/);
    await fails(
      'exec',
      { name: 'nope-missing', command: ['true'] },
      /no sandbox "nope-missing".*list_sandboxes/,
    );
    await assert.rejects(
      client.callTool({ name: 'no_such_tool', arguments: {} }),
      /Unknown tool: no_such_tool/,
    );
  });

  test('no token or a wrong token: 401, nothing runs', async () => {
    for (const headers of [{}, { Authorization: 'Bearer wrong-token' }] as Record<string, string>[]) {
      const res = await fetch(server.url(), {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          ...headers,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'x', version: '1' },
          },
        }),
      });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const sdk = new Client({ name: 'no-token', version: '1' });
    await assert.rejects(
      sdk.connect(new StreamableHTTPClientTransport(new URL(server.url()))),
      /401|Unauthorized/,
    );
  });

  test('transport rules: unknown version 400, unknown session 404, GET 405, old version negotiated', async () => {
    const auth = {
      Authorization: `Bearer ${TOKEN}`,
      Accept: 'application/json, text/event-stream',
      'Content-Type': 'application/json',
    };
    const init = await fetch(server.url(), {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-03-26',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    });
    assert.equal(init.status, 200);
    assert.equal(
      ((await init.json()) as { result: { protocolVersion: string } }).result.protocolVersion,
      '2025-03-26',
    );
    const session = init.headers.get('mcp-session-id')!;
    const ping = (headers: Record<string, string>) =>
      fetch(server.url(), {
        method: 'POST',
        headers: { ...auth, ...headers },
        body: '{"jsonrpc":"2.0","id":2,"method":"ping"}',
      });
    assert.equal(
      (await ping({ 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '1999-01-01' })).status,
      400,
    );
    assert.equal((await ping({ 'Mcp-Session-Id': 'not-a-session' })).status, 404);
    assert.equal((await ping({})).status, 400);
    assert.equal(
      (await ping({ 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-03-26' })).status,
      200,
    );
    assert.equal(
      (await fetch(server.url(), { headers: { ...auth, 'Mcp-Session-Id': session } })).status,
      405,
    );
    const notification = await fetch(server.url(), {
      method: 'POST',
      headers: { ...auth, 'Mcp-Session-Id': session },
      body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    });
    assert.equal(notification.status, 202);
    assert.equal(
      (await fetch(server.url(), { method: 'DELETE', headers: { ...auth, 'Mcp-Session-Id': session } }))
        .status,
      200,
    );
    assert.equal((await ping({ 'Mcp-Session-Id': session })).status, 404);
  });
});
