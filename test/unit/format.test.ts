import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkpointsText,
  cpuPercent,
  formatAge,
  formatBytes,
  formatMemory,
  usageText,
} from '../../src/vscode/format';

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

test('resource use: CPU share from two samples, memory against the limit, missing values stay missing', () => {
  assert.equal(cpuPercent(undefined, { cpuSeconds: 5, sampledAt: 1000 }), undefined);
  assert.equal(cpuPercent({ cpuSeconds: 5, sampledAt: 1000 }, { cpuSeconds: 6.5, sampledAt: 4000 }), 50);
  assert.equal(
    cpuPercent({ cpuSeconds: 9, sampledAt: 1000 }, { cpuSeconds: 1, sampledAt: 4000 }),
    undefined,
    'restarted',
  );
  assert.deepEqual(usageText({ memoryBytes: 512 * 1024 ** 2, cpuSeconds: 3 }, undefined, 2048), {
    cpu: '3.0 s CPU time since start',
    memory: '512 MiB of 2 GiB',
  });
  assert.deepEqual(usageText({ diskBytes: 1536 * 1024 ** 2, processes: 12 }, 150), {
    cpu: '150 % of a core',
    disk: '1.5 GiB',
    processes: '12',
  });
});

test('checkpoints summed per sandbox', () => {
  assert.equal(checkpointsText([]), 'none');
  assert.equal(checkpointsText([{ sizeBytes: 1024 ** 3 }, { sizeBytes: 512 * 1024 ** 2 }]), '2 · 1.5 GiB');
  assert.equal(checkpointsText([{ sizeBytes: 1024 }, {}]), '2 · 1.0 KiB (some sizes unknown)');
  assert.equal(checkpointsText([{}]), '1 · size unknown');
});
