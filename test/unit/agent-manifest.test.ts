// The agent tools' manifest and input checks: package.json's languageModelTools are the catalog's (run
// scripts/lm-tools-manifest.ts after changing a tool), follow VS Code's contribution rules, and the MCP provider
// and engine version are declared; bad inputs get a sentence that says what to fix; per-sandbox calls queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { languageModelToolsManifest } from '../../src/agent/manifest';
import { KeyedQueue } from '../../src/agent/queue';
import { validateInput } from '../../src/agent/schema';
import { AgentToolCatalog } from '../../src/agent/tools';
import type { AgentHost } from '../../src/agent/host';

const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as {
  engines: { vscode: string };
  devDependencies: Record<string, string>;
  contributes: { languageModelTools: Array<Record<string, unknown>>; mcpServerDefinitionProviders: unknown };
};

test('package.json languageModelTools are generated from the catalog', () => {
  assert.deepEqual(
    pkg.contributes.languageModelTools,
    languageModelToolsManifest(),
    'run: node --import tsx scripts/lm-tools-manifest.ts',
  );
});

test('every tool follows the contribution rules VS Code enforces', () => {
  for (const t of pkg.contributes.languageModelTools) {
    assert.match(String(t.name), /^(?!copilot_|vscode_)[\w-]+$/);
    assert.match(String(t.toolReferenceName), /^[\w-]+$/);
    assert.ok(t.displayName && t.modelDescription, String(t.name));
    assert.equal((t.inputSchema as { type: string }).type, 'object');
    for (const tag of t.tags as string[]) assert.doesNotMatch(tag, /^(copilot_|vscode_)/);
  }
  assert.deepEqual(pkg.contributes.mcpServerDefinitionProviders, [
    { id: 'pixels.mcp', label: 'Pixels sandboxes' },
  ]);
  // registerMcpServerDefinitionProvider and McpHttpServerDefinition are in VS Code 1.101 and later.
  assert.equal(pkg.engines.vscode, '^1.101.0');
  assert.match(pkg.devDependencies['@types/vscode']!, /1\.101\./);
});

test('pixels tool names and argument names', () => {
  const tools = new Map(new AgentToolCatalog({} as AgentHost).tools.map((t) => [t.name, t]));
  const args = (n: string) =>
    Object.keys(tools.get(n)!.inputSchema.properties)
      .filter((k) => k !== 'server')
      .sort();
  assert.deepEqual(args('create_sandbox'), ['base', 'image', 'label', 'name']);
  assert.deepEqual(args('exec'), ['command', 'cwd', 'env', 'name', 'timeout_sec']);
  assert.deepEqual(args('write_file'), ['content', 'mode', 'name', 'path']);
  assert.deepEqual(args('read_file'), ['max_bytes', 'name', 'path']);
  assert.deepEqual(args('list_files'), ['name', 'path', 'recursive']);
  assert.deepEqual(args('edit_file'), ['name', 'new_string', 'old_string', 'path', 'replace_all']);
  for (const n of ['destroy_sandbox', 'start_sandbox', 'stop_sandbox']) assert.deepEqual(args(n), ['name']);
  assert.deepEqual(args('list_sandboxes'), []);
  assert.deepEqual(args('list_bases'), []);
});

test('bad input: one sentence naming the field and what to do', () => {
  const schema = new AgentToolCatalog({} as AgentHost).tool('exec')!.inputSchema;
  const problem = (input: unknown) => {
    try {
      validateInput(schema, input, 'exec');
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  };
  assert.equal(problem({ name: 'a', command: ['ls'] }), undefined);
  assert.match(problem({ name: 'a' })!, /command is required/);
  assert.match(problem({ name: 'a', command: 'ls' })!, /command must be an array of strings, not a string/);
  assert.match(problem({ name: 'a', command: [] })!, /at least 1 element/);
  assert.match(problem({ name: 'a', command: ['ls', 1] })!, /command\[1\] must be a string/);
  assert.match(problem({ name: 'a', command: ['ls'], timeout_sec: 1.5 })!, /timeout_sec must be an integer/);
  assert.match(problem({ name: 'a', command: ['ls'], env: { A: 1 } })!, /env\.A must be a string/);
  assert.match(problem({ name: 'a', command: ['ls'], argv: [] })!, /argv is not an argument of this tool/);
  assert.match(problem(['x'])!, /must be an object/);
});

test('calls about one sandbox run one at a time, others in parallel', async () => {
  const queue = new KeyedQueue();
  const log: string[] = [];
  const step = (key: string, id: string, ms: number) =>
    queue.run(key, async () => {
      log.push(`start ${id}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`end ${id}`);
    });
  await Promise.all([step('a', 'a1', 30), step('a', 'a2', 1), step('b', 'b1', 5)]);
  assert.deepEqual(log, ['start a1', 'start b1', 'end b1', 'end a1', 'start a2', 'end a2']);
  // A failure does not block the calls queued behind it.
  await assert.rejects(queue.run('a', () => Promise.reject(new Error('x'))));
  assert.equal(await queue.run('a', () => Promise.resolve(7)), 7);
});
