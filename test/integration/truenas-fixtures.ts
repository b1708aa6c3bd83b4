// Shared set-up for the TrueNAS integration tests: a simulator on loopback and the production backend on it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type SimServer, type SimVersion } from '../sim/index';
import { TrueNASClient } from '../../src/backends/truenas/client';
import type { TrueNASServerConfig } from '../../src/backends/truenas/index';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import type { Backend } from '../../src/core/backend';
import { makeSelfSignedCert } from '../lab/tls';

export const API_KEY = '1-' + 'a'.repeat(64);
export const VERSIONS: SimVersion[] = ['25.04', '25.10'];

export interface Rig {
  sim: SimServer;
  config: TrueNASServerConfig;
  backend: Backend;
  close(): Promise<void>;
}

export async function startRig(
  version: SimVersion,
  overrides: Partial<TrueNASServerConfig> = {},
  simOptions: { treatAsRemote?: boolean; jobDurationMs?: number; tls?: { key: string; cert: string } } = {},
  apiKey = API_KEY,
): Promise<Rig> {
  const sim = await startSimulator({ version, apiKey: API_KEY, jobDurationMs: 20, ...simOptions });
  const config: TrueNASServerConfig = {
    serverId: `sim-${version}`,
    host: '127.0.0.1',
    port: sim.port,
    username: 'truenas_admin',
    secure: simOptions.tls !== undefined,
    callTimeoutMs: 5000,
    ...overrides,
  };
  const backend = createTrueNASBackend(config, apiKey);
  return {
    sim,
    config,
    backend,
    async close() {
      backend.dispose();
      await sim.close();
    },
  };
}

/** A production client with short timeouts, for protocol-level checks. */
export function clientFor(
  sim: SimServer,
  apiKey = API_KEY,
  extra: Partial<ConstructorParameters<typeof TrueNASClient>[0]> = {},
) {
  return new TrueNASClient(
    {
      host: '127.0.0.1',
      port: sim.port,
      secure: sim.url.startsWith('wss:'),
      username: 'truenas_admin',
      callTimeoutMs: 5000,
      backoffBaseMs: 50,
      ...extra,
    },
    apiKey,
  );
}

/** A self-signed certificate made now with the openssl CLI; returns PEMs and its SHA-256 fingerprint. */
export function selfSignedCert(): { key: string; cert: string; fingerprint: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-tls-'));
  try {
    const { key, cert, fingerprint } = makeSelfSignedCert(dir, 'server', { cn: 'truenas.local' });
    return { key, cert, fingerprint };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A throwaway CA and a server certificate it signed for DNS:localhost (not for 127.0.0.1). */
export function caSignedCert(): { caPem: string; key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-ca-'));
  const f = (name: string) => join(dir, name);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  try {
    run([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=Pixels Test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
    ]);
    run([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      f('srv.key'),
      '-out',
      f('srv.csr'),
    ]);
    writeFileSync(
      f('ext.cnf'),
      'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    run([
      'x509',
      '-req',
      '-in',
      f('srv.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f('ext.cnf'),
      '-out',
      f('srv.pem'),
    ]);
    return {
      caPem: readFileSync(f('ca.pem'), 'utf8'),
      key: readFileSync(f('srv.key'), 'utf8'),
      cert: readFileSync(f('srv.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function containerDs(sim: SimServer, name: string): string {
  return `${sim.engine.pool}/.ix-virt/containers/px-${name}`;
}

/** Engine state summary for "nothing lost, duplicated or half-made" checks. */
export async function stateOf(
  sim: SimServer,
): Promise<{ instances: string[]; snapshots: string[]; datasets: string[] }> {
  const instances = (await sim.engine.listInstances()).map((i) => `${i.name}:${i.status}`).sort();
  const snapshots = (await sim.engine.listSnapshots()).map((s) => s.id).sort();
  const datasets = (await sim.engine.listDatasets())
    .map((d) => d.name)
    .filter((n) => n.includes('/.ix-virt/containers/') || n.includes('px-trash'))
    .sort();
  return { instances, snapshots, datasets };
}

export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
