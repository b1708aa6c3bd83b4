// requireLab() must fail loudly (never skip) when the lab is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('a missing lab.env is a loud, specific error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'px-nolab-'));
  process.env.PIXELS_CACHE_DIR = dir;
  try {
    const { requireLab, labEnvPath } = await import('../../test/lab/lab');
    assert.equal(labEnvPath(), join(dir, 'lab.env'));
    await assert.rejects(
      requireLab(),
      /^Error: INCUS LAB MISSING: .*lab\.env does not exist.*sudo bash test\/lab\/up\.sh/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lab.env whose socket does not answer says the lab is down', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'px-downlab-'));
  writeFileSync(
    join(dir, 'lab.env'),
    [
      `INCUS_SOCKET=${join(dir, 'no.socket')}`,
      'LAB_BRIDGE=pxlabbr0',
      'LAB_BRIDGE_IPV4=10.77.0.1/24',
      'LAB_NAT_BRIDGE=pxnatbr0',
      'LAB_NAT_BRIDGE_IPV4=10.78.0.1/24',
      'LAB_NAS_USER=pxnas',
      'LAB_IMAGE=pixels-debian-12',
      'LAB_POOL_BTRFS=pxbtrfs',
      'LAB_POOL_DIR=pxdir',
      '',
    ].join('\n'),
  );
  const { execFileSync } = await import('node:child_process');
  // A fresh process: requireLab() caches its answer per process.
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      "require('./test/lab/lab.ts').requireLab().then(() => console.log('UP'), (e) => console.log(e.message))",
    ],
    { env: { ...process.env, PIXELS_CACHE_DIR: dir }, encoding: 'utf8' },
  );
  rmSync(dir, { recursive: true, force: true });
  assert.match(out, /^INCUS LAB DOWN: incusd does not answer on .*no\.socket/);
});
