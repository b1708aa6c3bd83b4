import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAge, formatBytes, formatMemory } from '../../src/vscode/format';

test('ages use coarse buckets that do not change every second', () => {
  const now = new Date('2026-11-27T12:00:00Z');
  const ago = (s: number) => formatAge(new Date(now.getTime() - s * 1000), now);
  assert.equal(ago(5), 'just now');
  assert.equal(ago(59), 'just now');
  assert.equal(ago(61), '1 min ago');
  assert.equal(ago(3 * 3600 + 59 * 60), '3 h ago');
  assert.equal(ago(3 * 3600 + 1), '3 h ago', 'same text within the hour');
  assert.equal(ago(2 * 86400), '2 d ago');
  assert.equal(ago(65 * 86400), '2 mo ago');
  assert.equal(ago(800 * 86400), '2 y ago');
  assert.equal(
    formatAge(new Date(now.getTime() + 5000), now),
    'just now',
    'clock skew is not "in the future"',
  );
});

test('sizes and memory', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(340 * 1024 * 1024), '340 MiB');
  assert.equal(formatBytes(1.25 * 1024 ** 3), '1.3 GiB');
  assert.equal(formatMemory(2048), '2 GiB');
  assert.equal(formatMemory(1500), '1500 MiB');
});
