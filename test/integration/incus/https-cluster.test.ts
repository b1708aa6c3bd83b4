// The HTTPS path (client certificate trusted like `incus remote add`, server certificate pinned), the
// one-member cluster of the lab (members, location, create on a target), and projects.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIncusBackend, probeIncus } from '../../../src/backends/incus/index';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { NotAuthorizedError, SecurityError } from '../../../src/core/errors';
import type { BackendChange } from '../../../src/core/backend';
import type { Lab } from '../../lab/lab';
import { removeTestInstances, testPrefix, waitForIpv4 } from './helpers';
import { requireLab } from '../../lab/lab';
import { makeSelfSignedCert } from '../../lab/tls';

async function selfSigned(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const { certPath, keyPath } = makeSelfSignedCert(dir, name);
  return { cert: certPath, key: keyPath };
}

describe('incus backend over HTTPS with a client certificate, on a cluster', { timeout: 180_000 }, () => {
  const prefix = testPrefix();
  const project = `px-${prefix}`;
  let lab: Lab;
  let dir: string;
  let admin: IncusRestClient;
  let clientFingerprint = '';
  let url = '';
  let client: { cert: string; key: string };
  let serverCertPath = '';
  let backend: IncusBackend;

  before(async () => {
    lab = await requireLab();
    assert.ok(lab.httpsAddress, 'the lab serves HTTPS (INCUS_HTTPS_ADDRESS in lab.env)');
    url = `https://${lab.httpsAddress}`;
    dir = mkdtempSync(join(tmpdir(), 'px-incus-tls-'));
    admin = new IncusRestClient({ socketPath: lab.socket });
    client = await selfSigned(dir, `px-${prefix}-client`);
    const pem = readFileSync(client.cert, 'utf8');
    const x = new X509Certificate(pem);
    clientFingerprint = x.fingerprint256.replace(/:/g, '').toLowerCase();
    // Trust the client certificate the way `incus config trust add-certificate` does.
    await admin.call('POST', '/1.0/certificates', {
      body: {
        type: 'client',
        name: `px-${prefix}`,
        certificate: x.raw.toString('base64'),
        restricted: false,
      },
    });
    const server = await admin.call<{ environment: { certificate: string } }>('GET', '/1.0');
    serverCertPath = join(dir, 'server.crt');
    writeFileSync(serverCertPath, server.metadata.environment.certificate);
    backend = createIncusBackend({
      serverId: 'lab-https',
      url,
      clientCert: client.cert,
      clientKey: client.key,
      serverCert: serverCertPath,
      network: lab.bridge,
      storagePool: lab.poolBtrfs,
    });
  });

  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    if (admin) {
      await admin.call('DELETE', `/1.0/projects/${project}`).catch(() => undefined);
      if (clientFingerprint)
        await admin.call('DELETE', `/1.0/certificates/${clientFingerprint}`).catch(() => undefined);
      admin.close();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('info lists the cluster members; capabilities say so', async () => {
    const info = await backend.info();
    assert.match(info.version, /^Incus 6\./);
    assert.ok(lab.clustered, 'the lab is a one-member cluster (LAB_CLUSTER=1 in up.sh)');
    assert.deepEqual(info.clusterMembers, ['lab1']);
    assert.equal((await backend.capabilities()).clusterMembers, true);
    const probed = await probeIncus({
      serverId: 'probe',
      url,
      clientCert: client.cert,
      clientKey: client.key,
      serverCert: serverCertPath,
    });
    assert.deepEqual(probed, info);
  });

  test('create on a target member over HTTPS, events over wss, exec over wss, destroy', async () => {
    const changes: BackendChange[] = [];
    const sub = backend.onDidChange((c) => changes.push(c));
    const name = `${prefix}-h`;
    const created = await backend.create({ name, image: lab.image, target: 'lab1', memoryMiB: 256 });
    assert.equal(created.location, 'lab1');
    const up = await waitForIpv4(backend, name);
    assert.equal(up.location, 'lab1');
    assert.ok((await backend.list()).some((s) => s.name === name && s.location === 'lab1'));
    const r = await backend.exec(name, ['cat', '/proc/meminfo']);
    assert.equal(r.exitCode, 0);
    // lxcfs shows the limit inside the container
    assert.match(r.stdout.toString(), /MemTotal:\s+262144 kB/);
    await backend.destroy(name);
    assert.ok(
      changes.some((c) => c.kind === 'sandbox' && c.name === name),
      'lifecycle events arrived over wss',
    );
    sub.dispose();
  });

  test('a server certificate that does not match the pin is refused', async () => {
    const other = await selfSigned(dir, 'not-the-server');
    const wrong = createIncusBackend({
      serverId: 'wrong-pin',
      url,
      clientCert: client.cert,
      clientKey: client.key,
      serverCert: other.cert,
    });
    try {
      await assert.rejects(
        wrong.list(),
        (err: unknown) => err instanceof SecurityError && /TLS|pinned/.test(err.message),
      );
    } finally {
      wrong.dispose();
    }
  });

  test('no pinned server certificate: refused before connecting', () => {
    assert.throws(
      () => createIncusBackend({ serverId: 'nopin', url, clientCert: client.cert, clientKey: client.key }),
      (err: unknown) => err instanceof SecurityError && /not pinned/.test(err.message),
    );
  });

  test('a client certificate the server does not trust', async () => {
    const stranger = await selfSigned(dir, 'stranger');
    const b = createIncusBackend({
      serverId: 'stranger',
      url,
      clientCert: stranger.cert,
      clientKey: stranger.key,
      serverCert: serverCertPath,
    });
    try {
      await assert.rejects(b.list(), NotAuthorizedError);
      await assert.rejects(
        b.info(),
        (err: unknown) =>
          err instanceof NotAuthorizedError && /does not trust this client certificate/.test(err.message),
      );
    } finally {
      b.dispose();
    }
  });

  test('project option: sandboxes live in the configured project only', async () => {
    await admin.call('POST', '/1.0/projects', {
      body: { name: project, config: { 'features.images': 'false', 'features.profiles': 'false' } },
    });
    const inProject = createIncusBackend({
      serverId: 'proj',
      socketPath: lab.socket,
      project,
      network: lab.bridge,
    });
    const inDefault = createIncusBackend({ serverId: 'default', socketPath: lab.socket });
    try {
      const name = `${prefix}-p`;
      await inProject.create({ name, image: lab.image, start: false });
      assert.ok((await inProject.list()).some((s) => s.name === name));
      assert.ok(!(await inDefault.list()).some((s) => s.name === name));
      await inProject.destroy(name);
      assert.ok(!(await inProject.list()).some((s) => s.name === name));
    } finally {
      inProject.dispose();
      inDefault.dispose();
    }
  });
});
