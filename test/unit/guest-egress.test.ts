import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotFoundError, ValidationError } from '../../src/core/errors';
import {
  AGENT_PRESET,
  agentPresetEntries,
  buildPolicy,
  effectiveEntries,
  egressEntryProblem,
  egressSummary,
  parseEgressEntry,
} from '../../src/guest/index';
import {
  parsePolicy,
  serializePolicy,
  withAllowed,
  withDenied,
  withMode,
} from '../../src/guest/egress/policy';

test('domains are accepted and normalised', () => {
  assert.deepEqual(parseEgressEntry('API.Anthropic.com.'), { kind: 'domain', value: 'api.anthropic.com' });
  assert.deepEqual(parseEgressEntry('  xn--bcher-kva.example  '), {
    kind: 'domain',
    value: 'xn--bcher-kva.example',
  });
  assert.equal(parseEgressEntry('a-b.c0.io').value, 'a-b.c0.io');
});

test('bad domains get a specific reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['*.github.com', /wildcards are not supported/],
    ['https://github.com/x', /not a URL/],
    ['github.com:443', /ports are not supported/],
    ['localhost', /at least two labels/],
    ['a..b', /empty label/],
    ['-a.com', /must not start or end with a hyphen/],
    ['a_b.com', /only letters, digits and hyphens/],
    ['bücher.de', /punycode/],
    ['x.123', /all digits/],
    ['two words.com', /spaces/],
    [`${'a'.repeat(64)}.com`, /longer than 63/],
    [`${'abcdefghi.'.repeat(26)}com`, /at most 253/],
  ];
  for (const [input, reason] of cases) {
    assert.throws(() => parseEgressEntry(input), ValidationError, input);
    assert.match(egressEntryProblem(input) ?? '', reason, input);
  }
});

test('IPv4 addresses and CIDRs', () => {
  assert.deepEqual(parseEgressEntry('203.0.113.7'), {
    kind: 'cidr',
    family: 4,
    value: '203.0.113.7',
    single: true,
  });
  assert.deepEqual(parseEgressEntry('10.0.0.0/8'), {
    kind: 'cidr',
    family: 4,
    value: '10.0.0.0/8',
    single: false,
  });
  assert.equal(parseEgressEntry('10.1.2.3/32').value, '10.1.2.3');
  const cases: Array<[string, RegExp]> = [
    ['10.0.0.1/8', /host bits are set after \/8; did you mean 10\.0\.0\.0\/8\?/],
    ['256.1.1.1', /larger than 255/],
    ['1.2.3', /four numbers/],
    ['01.2.3.4', /leading zero/],
    ['1.2.3.4/33', /at most 32/],
    ['1.2.3.4/x', /not a number/],
    ['0.0.0.0/0', /unrestricted mode/],
    ['1.2.3.4:80', /ports are not supported/],
  ];
  for (const [input, reason] of cases) assert.match(egressEntryProblem(input) ?? '', reason, input);
});

test('IPv6 addresses and CIDRs, canonical form', () => {
  assert.equal(parseEgressEntry('2001:DB8:0:0:0:0:0:1').value, '2001:db8::1');
  assert.equal(parseEgressEntry('2001:db8::/32').value, '2001:db8::/32');
  assert.equal(parseEgressEntry('fe80::/10').value, 'fe80::/10');
  assert.equal(parseEgressEntry('::ffff:192.0.2.1').value, '::ffff:c000:201');
  assert.equal(parseEgressEntry('2001:db8:0:1:0:0:0:1').value, '2001:db8:0:1::1');
  const cases: Array<[string, RegExp]> = [
    ['2001:db8::1::2', /only once/],
    ['2001:db8::g', /not an IPv6 group/],
    ['1:2:3:4:5:6:7', /eight groups/],
    ['2001:db8::1/129', /at most 128/],
    ['2001:db8::1/32', /host bits are set after \/32; did you mean 2001:db8::\/32\?/],
    ['fe80::1%eth0', /zone/],
    ['[2001:db8::1]:443', /ports are not supported/],
  ];
  for (const [input, reason] of cases) assert.match(egressEntryProblem(input) ?? '', reason, input);
});

test('the agent preset is valid, non-empty and includes what the agents need', () => {
  const preset = agentPresetEntries();
  for (const entry of preset) assert.equal(egressEntryProblem(entry), undefined, entry);
  for (const must of [
    'api.anthropic.com',
    'api.openai.com',
    'registry.npmjs.org',
    'github.com',
    'mise.run',
    'nodejs.org',
  ])
    assert.ok(preset.includes(must), must);
  // Host names only: a provider's address range also serves endpoints anyone can own (storage buckets,
  // run.app, appspot, GitHub Pages), so it would be a way out in agent mode.
  assert.deepEqual(
    preset.filter((e) => parseEgressEntry(e).kind !== 'domain'),
    [],
    'no address ranges in the agent preset',
  );
  for (const group of AGENT_PRESET) assert.doesNotMatch(group.label, /range|CDN/i);
});

test('policy: agent keeps its mode and runtime entries; deny removes from the preset too', () => {
  let p = buildPolicy('agent', ['Example.com', 'example.com', '10.1.2.3']);
  assert.equal(p.mode, 'agent');
  assert.deepEqual(p.allow, ['example.com', '10.1.2.3']);
  assert.ok(effectiveEntries(p).includes('api.anthropic.com'));
  p = withAllowed(p, 'new.example.org');
  assert.deepEqual(p.allow, ['example.com', '10.1.2.3', 'new.example.org']);
  assert.equal(withAllowed(p, 'github.com').allow.length, 3, 'a preset entry is not duplicated');
  p = withDenied(p, 'github.com');
  assert.ok(!effectiveEntries(p).includes('github.com'));
  assert.throws(() => withDenied(p, 'not-there.example'), NotFoundError);
  // Switching modes keeps the sandbox's own entries (pixels re-derived them from config and lost them).
  const allowlist = withMode(p, 'allowlist');
  assert.deepEqual(effectiveEntries(allowlist), ['example.com', '10.1.2.3', 'new.example.org']);
  assert.deepEqual(withMode(allowlist, 'unrestricted').allow, allowlist.allow);
  assert.deepEqual(effectiveEntries(withMode(allowlist, 'unrestricted')), []);
});

test('policy: allow on an unrestricted sandbox switches to allowlist (as pixels does)', () => {
  const p = withAllowed(buildPolicy('unrestricted'), 'example.com');
  assert.equal(p.mode, 'allowlist');
  assert.deepEqual(effectiveEntries(p), ['example.com']);
});

test('policy: settings extend or replace the preset; resolvers must be single addresses', () => {
  assert.ok(buildPolicy('agent', [], { presetExtra: ['corp.example'] }).preset.includes('corp.example'));
  assert.deepEqual(buildPolicy('agent', [], { presetOverride: ['only.example'] }).preset, ['only.example']);
  assert.deepEqual(buildPolicy('allowlist', [], { presetExtra: ['corp.example'] }).preset, []);
  assert.deepEqual(buildPolicy('agent', [], { resolvers: ['1.1.1.1', '2606:4700::1111'] }).resolvers, [
    '1.1.1.1',
    '2606:4700::1111',
  ]);
  assert.throws(() => buildPolicy('agent', [], { resolvers: ['10.0.0.0/8'] }), /single IPv4 or IPv6 address/);
  assert.throws(() => buildPolicy('agent', ['*.x.com']), ValidationError);
  assert.throws(() => buildPolicy('open' as 'agent'), /Unknown egress mode "open"/);
});

test('policy file: round trip, one item per line, malformed files refused', () => {
  const p = buildPolicy('agent', ['example.com', '2001:db8::/48']);
  const text = serializePolicy(p);
  assert.deepEqual(parsePolicy(text), p);
  assert.match(text, /\n {4}"example.com",?\n/);
  assert.throws(() => parsePolicy('{'), /not valid JSON/);
  assert.throws(() => parsePolicy('{"version":2}'), /Unsupported egress policy version/);
  assert.throws(() => parsePolicy('{"version":1,"mode":"agent","allow":"x"}'), /must be a list of strings/);
  assert.throws(() => parsePolicy('{"version":1,"mode":"agent","allow":["a\\",b"]}'), ValidationError);
});

test('summary label for the tree row', () => {
  assert.equal(egressSummary(buildPolicy('unrestricted', ['a.example'])), 'unrestricted');
  assert.equal(egressSummary(buildPolicy('allowlist', ['a.example', '10.0.0.1'])), 'allowlist · 2 allowed');
  assert.match(egressSummary(buildPolicy('agent', ['a.example'])), /^agent · \d+ allowed$/);
});
