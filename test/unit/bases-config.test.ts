// Bases and the agent lifecycle policy as the pixels TOML writes them ([mcp.bases.<name>], [mcp]), through the
// real config loader: built-ins merged, the user's table winning, and every bad value reported with its line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/core/config';
import { baseChain, parseGoDuration, formatRemaining } from '../../src/bases/index';

function load(text: string, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-bases-'));
  try {
    const file = join(dir, 'config.toml');
    writeFileSync(file, text);
    const { config, problems } = loadConfig({ configFile: file, home: '/home/u', env });
    return { bases: config.bases, problems, file };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('no [mcp] table: the built-ins dev (ubuntu/24.04), python and node (from dev), pixels defaults', () => {
  const { bases, problems } = load('');
  assert.deepEqual(problems, []);
  assert.deepEqual(
    bases.bases.map((b) => [b.name, b.parentImage ?? `from:${b.from}`, b.setupScript]),
    [
      ['dev', 'ubuntu/24.04', { kind: 'embedded', name: 'dev.sh' }],
      ['node', 'from:dev', { kind: 'embedded', name: 'node.sh' }],
      ['python', 'from:dev', { kind: 'embedded', name: 'python.sh' }],
    ],
  );
  assert.ok(bases.bases.every((b) => b.builtin));
  assert.equal(bases.basePrefix, 'base-');
  assert.deepEqual(bases.lifecycle, { idleStopAfterMs: 3_600_000, maxAgeMs: 86_400_000 });
});

test('[mcp.bases.<name>]: own bases, ~ expanded, embedded scripts, a user table replaces a built-in', () => {
  const { bases, problems } = load(`
[mcp]
base_prefix = "tmpl-"
idle_stop_after = "15m"
hard_destroy_after = "2h30m"

[mcp.bases.web]
from = "node"
setup_script = "~/bases/web.sh"
description = "node + our web deps"

[mcp.bases.dev]
parent_image = "debian/12"
setup_script = "mcp:bases/dev.sh"
`);
  assert.deepEqual(problems, []);
  assert.equal(bases.basePrefix, 'tmpl-');
  assert.deepEqual(bases.lifecycle, { idleStopAfterMs: 900_000, maxAgeMs: 9_000_000 });
  const web = bases.bases.find((b) => b.name === 'web');
  assert.deepEqual(web, {
    name: 'web',
    from: 'node',
    setupScript: { kind: 'file', path: '/home/u/bases/web.sh' },
    description: 'node + our web deps',
    builtin: false,
  });
  const dev = bases.bases.find((b) => b.name === 'dev');
  assert.equal(dev?.parentImage, 'debian/12');
  assert.equal(dev?.builtin, false);
  assert.deepEqual(
    baseChain(bases.bases, 'web').map((b) => b.name),
    ['dev', 'node', 'web'],
  );
});

test('environment variables win over the TOML (PIXELS_MCP_*), as in pixels', () => {
  const { bases, problems } = load('[mcp]\nidle_stop_after = "15m"\n', {
    PIXELS_MCP_IDLE_STOP_AFTER: '5m',
    PIXELS_MCP_HARD_DESTROY_AFTER: '0',
    PIXELS_MCP_BASE_PREFIX: 'b-',
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(bases.lifecycle, { idleStopAfterMs: 300_000, maxAgeMs: 0 });
  assert.equal(bases.basePrefix, 'b-');
});

test('bad bases are reported with line and key and left out, with the bases built on them', () => {
  const { bases, problems, file } = load(`[mcp.bases.both]
parent_image = "ubuntu/24.04"
from = "dev"

[mcp.bases.none]
description = "nothing to build from"

[mcp.bases.ghost]
from = "nosuch"

[mcp.bases.child]
from = "ghost"

[mcp.bases.a]
from = "b"

[mcp.bases.b]
from = "a"

[mcp.bases.script]
parent_image = "ubuntu/24.04"
setup_script = "mcp:bases/rust.sh"

[mcp.bases.typed]
parent_image = 24

[mcp.bases.Bad_Name]
parent_image = "ubuntu/24.04"

[mcp.bases.typo]
parent_image = "ubuntu/24.04"
setup_scirpt = "x.sh"
`);
  const by = (key: string) => problems.filter((p) => p.key === key).map((p) => `${p.line}: ${p.message}`);
  assert.deepEqual(by('mcp.bases.both.from'), [
    '3: a base has either parent_image (built from an image) or from (built on another base), not both',
  ]);
  assert.deepEqual(by('mcp.bases.none.parent_image'), [
    'undefined: a base needs parent_image (an image, e.g. "ubuntu/24.04") or from (another base)',
  ]);
  assert.match(by('mcp.bases.ghost.from')[0], /^9: base "nosuch" is not defined; known bases: .*dev/);
  assert.deepEqual(by('mcp.bases.child.from'), [
    '12: base "child" is built on "ghost", which has a problem of its own (see above)',
  ]);
  assert.match(by('mcp.bases.a.from')[0], /^15: bases are built on each other in a cycle: a → b → a/);
  assert.match(
    by('mcp.bases.script.setup_script')[0],
    /"mcp:bases\/rust.sh" is not an embedded script; the embedded ones are mcp:bases\/dev.sh/,
  );
  assert.deepEqual(by('mcp.bases.typed.parent_image'), ['25: must be a string, got number 24']);
  assert.match(
    by('mcp.bases.Bad_Name')[0],
    /base "Bad_Name" cannot be a sandbox name \(base-Bad_Name\): .*letters, digits and hyphens/,
  );
  assert.match(by('mcp.bases.typo.setup_scirpt')[0], /unknown key .*did you mean "setup_script"/);
  assert.ok(problems.every((p) => p.source === file));
  // Only the good ones (and the typo'd one, whose unknown key is ignored) are offered.
  assert.deepEqual(
    bases.bases.map((b) => b.name),
    ['dev', 'node', 'python', 'typo'],
  );
});

test('bad [mcp] lifecycle values are reported and the defaults kept', () => {
  const { bases, problems } = load(
    '[mcp]\nidle_stop_after = "an hour"\nhard_destroy_after = "-1h"\nbase_prefix = "9x"\n',
  );
  assert.deepEqual(
    problems.map((p) => `${p.key}@${p.line}: ${p.message}`),
    [
      'mcp.base_prefix@4: "9x" cannot start a sandbox name: A sandbox name cannot start with a digit.',
      'mcp.idle_stop_after@2: "an hour" is not a duration; write e.g. "30m", "1h", "1h30m" or "24h"',
      'mcp.hard_destroy_after@3: "-1h" is negative; a duration must be 0 or more',
    ],
  );
  assert.deepEqual(bases.lifecycle, { idleStopAfterMs: 3_600_000, maxAgeMs: 86_400_000 });
  assert.equal(bases.basePrefix, 'base-');
  const env = load('', { PIXELS_MCP_IDLE_STOP_AFTER: 'soon' });
  assert.deepEqual(
    env.problems.map((p) => `${p.source} ${p.key}: ${p.message}`),
    [
      'environment PIXELS_MCP_IDLE_STOP_AFTER: "soon" is not a duration; write e.g. "30m", "1h", "1h30m" or "24h"',
    ],
  );
});

test('Go durations and the short times the tree shows', () => {
  assert.equal(parseGoDuration('1h'), 3_600_000);
  assert.equal(parseGoDuration('1h30m'), 5_400_000);
  assert.equal(parseGoDuration('2.5h'), 9_000_000);
  assert.equal(parseGoDuration('90s'), 90_000);
  assert.equal(parseGoDuration('1500ms'), 1500);
  assert.equal(parseGoDuration('0'), 0);
  assert.ok(typeof parseGoDuration('1d') === 'object', 'Go has no day unit');
  assert.ok(typeof parseGoDuration('') === 'object');
  assert.ok(typeof parseGoDuration('h') === 'object');
  assert.equal(formatRemaining(11 * 60_000 + 1), '12 min');
  assert.equal(formatRemaining(3 * 3_600_000), '3 h');
  assert.equal(formatRemaining(90 * 60_000), '1 h 30 min');
  assert.equal(formatRemaining(50 * 3_600_000), '2 d 2 h');
  assert.equal(formatRemaining(-5), 'now');
});
