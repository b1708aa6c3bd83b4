// The agent tools in the editor against real lab containers: every language model tool through
// vscode.lm.invokeTool (create, list, exec, the file tools, checkpoint, restore, clone, stop, start, destroy), the
// confirmations prepareInvocation gives (state-changing tools say what happens, read tools ask nothing), a call
// refused at the confirmation step (cancelled: VS Code's own dialog is skipped in extension tests, see
// DialogService.skipDialogs, so the cancel is the refusal an extension can produce), a bad input, and the MCP
// server the editor runs (token copied by "Connect an External Agent", refused without it).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { removeTestInstances } from '../../integration/incus/helpers';
import { requireLab, type Lab } from '../../lab/lab';
import { pixelsApi, setServers } from './helpers';

async function invoke(
  tool: string,
  input: object,
  token?: vscode.CancellationToken,
): Promise<Record<string, unknown>> {
  const result = await vscode.lm.invokeTool(
    `pixels_${tool}`,
    { toolInvocationToken: undefined, input },
    token,
  );
  const part = result.content[0];
  assert.ok(part instanceof vscode.LanguageModelTextPart, `${tool}: a text part`);
  return JSON.parse(part.value) as Record<string, unknown>;
}

suite('agent tools (LM tools and MCP) against the Incus lab', function () {
  this.timeout(300_000);
  let lab: Lab;
  const prefix = `v${randomBytes(3).toString('hex')}`;
  const name = `${prefix}-t`;
  const clone = `${prefix}-c`;

  suiteSetup(async () => {
    lab = await requireLab();
    const c = vscode.workspace.getConfiguration('pixels');
    // Hermetic and quick: the lab image, no provisioning (the lab has no internet), no egress policy.
    await c.update('defaults.image', lab.image, vscode.ConfigurationTarget.Global);
    await c.update('defaults.provision', false, vscode.ConfigurationTarget.Global);
    await c.update('defaults.egress', 'unrestricted', vscode.ConfigurationTarget.Global);
    await c.update('mcp.port', 20000 + Math.floor(Math.random() * 20000), vscode.ConfigurationTarget.Global);
    await setServers([{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket } as never]);
    await pixelsApi();
  });

  suiteTeardown(async () => {
    await setServers([]);
    const c = vscode.workspace.getConfiguration('pixels');
    for (const key of ['defaults.image', 'defaults.provision', 'defaults.egress', 'mcp.port'])
      await c.update(key, undefined, vscode.ConfigurationTarget.Global);
    if (lab) await removeTestInstances(lab, prefix);
  });

  test('the tools are registered with VS Code, with their # reference names', () => {
    const ours = vscode.lm.tools.filter((t) => t.name.startsWith('pixels_'));
    assert.equal(ours.length, 16);
    assert.ok(ours.every((t) => t.tags.includes('pixels')));
    const exec = ours.find((t) => t.name === 'pixels_exec');
    assert.deepEqual((exec?.inputSchema as { required?: string[] }).required, ['name', 'command']);
  });

  test('create_sandbox, list_sandboxes, list_bases', async () => {
    const made = await invoke('create_sandbox', { name });
    assert.equal(made.name, name);
    assert.equal(made.status, 'running');
    const listed = (await invoke('list_sandboxes', {})).sandboxes as Array<Record<string, unknown>>;
    assert.equal(listed.find((s) => s.name === name)?.status, 'running');
    const bases = (await invoke('list_bases', {})).bases as Array<{ name: string; status: string }>;
    for (const builtin of ['dev', 'python', 'node'])
      assert.ok(
        bases.some((b) => b.name === builtin),
        `the built-in base ${builtin} is listed`,
      );
    for (const b of bases)
      assert.ok(['ready', 'missing', 'building', 'failed', 'incomplete'].includes(b.status));
  });

  test('exec and the file tools', async () => {
    const r = await invoke('exec', {
      name,
      command: ['sh', '-c', 'echo "$X in $(pwd)"; exit 2'],
      cwd: '/tmp',
      env: { X: 'hi' },
    });
    assert.deepEqual([r.exit_code, r.stdout, r.stderr], [2, 'hi in /tmp\n', '']);
    const path = '/root/agent/a.txt';
    assert.deepEqual(await invoke('write_file', { name, path, content: 'alpha beta\n' }), {
      ok: true,
      bytes_written: 11,
    });
    assert.deepEqual(await invoke('edit_file', { name, path, old_string: 'beta', new_string: 'gamma' }), {
      ok: true,
      replacements: 1,
    });
    assert.equal((await invoke('read_file', { name, path })).content, 'alpha gamma\n');
    const entries = (await invoke('list_files', { name, path: '/root/agent' })).entries as Array<{
      path: string;
    }>;
    assert.deepEqual(
      entries.map((e) => e.path),
      [path],
    );
    assert.deepEqual(await invoke('delete_file', { name, path }), { ok: true });
    assert.deepEqual((await invoke('list_files', { name, path: '/root/agent' })).entries, []);
  });

  test('confirmations: state-changing tools say exactly what happens, read tools ask nothing', async () => {
    const api = await pixelsApi();
    await invoke('create_checkpoint', { name, label: 'one' });
    await invoke('create_checkpoint', { name, label: 'two' });
    const destroy = await api.prepareToolInvocation('pixels_destroy_sandbox', { name });
    assert.equal(destroy?.title, `Destroy sandbox "${name}"?`);
    assert.match(destroy?.message ?? '', /its 2 checkpoints \(two, one\)\. Everything in it is lost/);
    const restore = await api.prepareToolInvocation('pixels_restore_checkpoint', { name, checkpoint: 'one' });
    assert.match(
      restore?.message ?? '',
      /to checkpoint "one": every change made since is lost, and the newer checkpoint two is deleted/,
    );
    const exec = await api.prepareToolInvocation('pixels_exec', { name, command: ['rm', '-rf', '/tmp/x'] });
    assert.match(exec?.message ?? '', /Runs `"rm" "-rf" "\/tmp\/x"` as root in sandbox/);
    const read = await api.prepareToolInvocation('pixels_read_file', { name, path: '/etc/hostname' });
    assert.equal(read?.title, undefined);
    assert.equal(read?.message, undefined);
  });

  test('refused at the confirmation step: nothing is destroyed', async () => {
    const source = new vscode.CancellationTokenSource();
    source.cancel();
    await assert.rejects(invoke('destroy_sandbox', { name }, source.token), /cancel/i);
    const listed = (await invoke('list_sandboxes', {})).sandboxes as Array<Record<string, unknown>>;
    assert.ok(
      listed.some((s) => s.name === name),
      'the sandbox is still there',
    );
  });

  test('checkpoint, restore, clone', async () => {
    await invoke('write_file', { name, path: '/root/state.txt', content: 'at three' });
    await invoke('create_checkpoint', { name, label: 'three' });
    await invoke('write_file', { name, path: '/root/state.txt', content: 'later' });
    const cps = (await invoke('list_checkpoints', { name })).checkpoints as Array<{ label: string }>;
    assert.deepEqual(
      cps.map((c) => c.label),
      ['three', 'two', 'one'],
    );
    assert.deepEqual(await invoke('restore_checkpoint', { name, checkpoint: 'three' }), {
      ok: true,
      deleted_checkpoints: [],
    });
    await invoke('start_sandbox', { name });
    assert.equal((await invoke('read_file', { name, path: '/root/state.txt' })).content, 'at three');
    const c = await invoke('clone_sandbox', { name, new_name: clone, checkpoint: 'one' });
    assert.equal(c.name, clone);
    await invoke('start_sandbox', { name: clone });
    await assert.rejects(invoke('read_file', { name: clone, path: '/root/state.txt' }), /does not exist/);
  });

  test('stop, start, destroy', async () => {
    assert.deepEqual(await invoke('stop_sandbox', { name: clone }), { ok: true });
    await assert.rejects(invoke('exec', { name: clone, command: ['true'] }), /is stopped.*start_sandbox/);
    assert.equal((await invoke('start_sandbox', { name: clone })).status, 'running');
    assert.deepEqual(await invoke('destroy_sandbox', { name: clone }), { ok: true });
    await assert.rejects(invoke('list_checkpoints', { name: clone }), /no sandbox.*list_sandboxes/);
  });

  test('bad input: the error says what to fix', async () => {
    await assert.rejects(
      invoke('exec', { name, command: 'ls -la' }),
      /command must be an array of strings.*call it again/,
    );
    await assert.rejects(invoke('read_file', { name, path: 'notes.txt' }), /not absolute/);
  });

  test('MCP: Connect an External Agent copies URL and token; the server refuses a request without it', async () => {
    const api = await pixelsApi();
    const url = await api.mcpUrl();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    assert.equal(await vscode.commands.executeCommand('pixels.connectExternalAgent', { copy: 'json' }), url);
    const config = JSON.parse(await vscode.env.clipboard.readText()) as {
      mcpServers: { pixels: { url: string; headers: { Authorization: string } } };
    };
    assert.equal(config.mcpServers.pixels.url, url);
    const headers = { Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' };
    const init = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal((await fetch(url, { method: 'POST', headers, body: init })).status, 401);
    const auth = { ...headers, Authorization: config.mcpServers.pixels.headers.Authorization };
    const res = await fetch(url, { method: 'POST', headers: auth, body: init });
    assert.equal(res.status, 200);
    const session = res.headers.get('mcp-session-id')!;
    const call = await fetch(url, {
      method: 'POST',
      headers: { ...auth, 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'list_sandboxes', arguments: {} },
      }),
    });
    const body = (await call.json()) as {
      result: { structuredContent: { sandboxes: Array<{ name: string }> } };
    };
    assert.ok(body.result.structuredContent.sandboxes.some((s) => s.name === name));
    await vscode.env.clipboard.writeText('');
  });

  test('destroy_sandbox', async () => {
    assert.deepEqual(await invoke('destroy_sandbox', { name }), { ok: true });
    const listed = (await invoke('list_sandboxes', {})).sandboxes as Array<Record<string, unknown>>;
    assert.ok(!listed.some((s) => s.name === name));
  });
});
