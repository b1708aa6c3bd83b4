// Login results, transport rules and TLS pinning with the production client against the simulator.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NotAuthenticatedError, SecurityError } from '../../src/core/errors';
import { createTrueNASBackend, probeTrueNAS } from '../../src/backends/truenas/index';
import { UntrustedCertificateError } from '../../src/core/certificate';
import { startSimulator } from '../sim/index';
import {
  API_KEY,
  caSignedCert,
  clientFor,
  selfSignedCert,
  startRig,
  VERSIONS,
  waitFor,
} from './truenas-fixtures';

for (const version of VERSIONS) {
  describe(`TrueNAS ${version} login`, () => {
    test('a wrong API key gets a clear authentication error and nothing else is called', async () => {
      const rig = await startRig(version, {}, {}, '1-' + 'b'.repeat(64));
      try {
        await assert.rejects(rig.backend.list(), (e: Error) => {
          assert.ok(e instanceof NotAuthenticatedError, String(e));
          assert.match(e.message, /refused the API key for user "truenas_admin"/);
          assert.doesNotMatch(e.message, /bbbbbbbb/);
          return true;
        });
        assert.equal(rig.sim.callCount('virt.instance.query'), 0);
      } finally {
        await rig.close();
      }
    });

    test('a key the server revokes for insecure transport (EXPIRED) says why', async () => {
      const rig = await startRig(version, {}, { treatAsRemote: true });
      try {
        await assert.rejects(rig.backend.list(), (e: Error) => {
          assert.ok(e instanceof NotAuthenticatedError, String(e));
          assert.match(e.message, /expired or was revoked/);
          assert.match(e.message, /insecure \(non-TLS\) connection/);
          assert.doesNotMatch(e.message, /aaaaaaaa/);
          return true;
        });
      } finally {
        await rig.close();
      }
    });

    test('the API key never reaches the log, even at trace level', async () => {
      const rig = await startRig(version);
      const lines: string[] = [];
      const log = {
        trace: (m: string) => lines.push(m),
        debug: (m: string) => lines.push(m),
        info: (m: string) => lines.push(m),
        warn: (m: string) => lines.push(m),
        error: (m: string) => lines.push(m),
      };
      const backend = createTrueNASBackend(rig.config, API_KEY, log);
      try {
        await backend.list();
        const all = lines.join('\n');
        assert.match(all, /auth\.login_ex/, 'the login was traced');
        assert.match(all, /«redacted»/);
        assert.ok(!all.includes(API_KEY.slice(2, 30)), 'no part of the key is logged');
      } finally {
        backend.dispose();
        await rig.close();
      }
    });

    test('probe reports the version', async () => {
      const rig = await startRig(version);
      try {
        const info = await probeTrueNAS(rig.config, API_KEY);
        assert.match(info.version, /^TrueNAS 25\.(04|10)/);
        await waitFor(() => rig.sim.connections() === 0, 2000, 'the probe to close its connection');
      } finally {
        await rig.close();
      }
    });
  });
}

describe('TrueNAS transport security', () => {
  test('no API key over ws:// to a non-loopback host: refused before any socket opens', async () => {
    // 0.0.0.0 is not a loopback name, yet on Linux a connect to it lands on the local simulator: if the guard
    // failed, the simulator would see the connection and the login.
    const sim = await startSimulator({ version: '25.10', apiKey: API_KEY });
    const config = {
      serverId: 's',
      host: '0.0.0.0',
      port: sim.port,
      username: 'truenas_admin',
      secure: false,
    };
    const backend = createTrueNASBackend(config, API_KEY); // lazy: nothing happens yet
    try {
      await assert.rejects(backend.list(), (e: Error) => {
        assert.ok(e instanceof SecurityError);
        assert.match(e.message, /Refusing to send the API key to 0\.0\.0\.0 over plain ws:\/\//);
        return true;
      });
      await assert.rejects(probeTrueNAS(config, API_KEY), SecurityError);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(sim.connections(), 0);
      assert.equal(sim.callCount(), 0);
    } finally {
      backend.dispose();
      await sim.close();
    }
  });

  test('a TrueNAS 26 server is driven through container.*, never virt.*', async () => {
    const sim = await startSimulator({ version: '26', apiKey: API_KEY });
    const config = {
      serverId: 's26',
      host: '127.0.0.1',
      port: sim.port,
      username: 'truenas_admin',
      secure: false,
    };
    const backend = createTrueNASBackend(config, API_KEY);
    try {
      assert.match((await probeTrueNAS(config, API_KEY)).version, /^TrueNAS 26\./);
      assert.deepEqual(await backend.list(), []);
      assert.ok(sim.callCount('container.query') >= 1);
      assert.equal(sim.callCount('virt.instance.query'), 0);
    } finally {
      backend.dispose();
      await sim.close();
    }
  });

  test('wss:// verified by default: a CA-trusted certificate for the right name passes, the wrong name is refused', async () => {
    // Node reads extra trusted CAs only at start-up, so the client runs in a child process that trusts our CA.
    const ca = caSignedCert();
    const sim = await startSimulator({
      version: '25.10',
      apiKey: API_KEY,
      tls: { key: ca.key, cert: ca.cert },
    });
    const dir = mkdtempSync(join(tmpdir(), 'pixels-ca-client-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), ca.caPem);
      const script = join(dir, 'probe.mts');
      writeFileSync(
        script,
        `import { probeTrueNAS } from ${JSON.stringify(resolve('src/backends/truenas/index.ts'))};
const [host, port, key] = process.argv.slice(2);
try {
  const info = await probeTrueNAS({ serverId: 'ca', host, port: Number(port), username: 'truenas_admin' }, key);
  console.log('OK ' + info.version);
} catch (e) {
  console.log('ERR ' + e.name + ' ' + e.message);
}
`,
      );
      // Asynchronous: the simulator runs in this process and must keep serving while the child connects.
      const probe = async (host: string) =>
        (
          await promisify(execFile)(
            process.execPath,
            ['--import', 'tsx', script, host, String(sim.port), API_KEY],
            {
              env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') },
              encoding: 'utf8',
              timeout: 30_000,
            },
          )
        ).stdout.trim();
      assert.match(await probe('localhost'), /^OK TrueNAS 25\.10/);
      assert.equal(sim.callCount('auth.login_ex'), 1);
      const wrongName = await probe('127.0.0.1');
      assert.match(
        wrongName,
        /^ERR UntrustedCertificateError The TLS certificate of 127\.0\.0\.1 cannot be verified/,
      );
      assert.match(wrongName, /its SHA-256 fingerprint is ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
      assert.equal(sim.callCount('auth.login_ex'), 1, 'no key was sent to the wrongly named server');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await sim.close();
    }
  });

  describe('wss:// with a self-signed certificate', () => {
    const tls = selfSignedCert();

    test('refused without a pin; the message shows the fingerprint; no login was sent', async () => {
      const sim = await startSimulator({
        version: '25.10',
        apiKey: API_KEY,
        tls: { key: tls.key, cert: tls.cert },
      });
      assert.ok(sim.url.startsWith('wss://'));
      const client = clientFor(sim);
      try {
        await assert.rejects(client.call('virt.instance.query', []), (e: Error) => {
          assert.ok(e instanceof UntrustedCertificateError, String(e));
          assert.equal(e.fingerprint, tls.fingerprint, 'the editor can offer to pin exactly this');
          assert.ok(e.message.includes(tls.fingerprint), `${e.message} should include ${tls.fingerprint}`);
          assert.match(e.message, /The API key was not sent/);
          return true;
        });
        assert.equal(sim.callCount('auth.login_ex'), 0);
        assert.equal(sim.callCount(), 0);
      } finally {
        client.dispose();
        await sim.close();
      }
    });

    test('accepted with the right pin (any spelling of it)', async () => {
      const sim = await startSimulator({
        version: '25.04',
        apiKey: API_KEY,
        tls: { key: tls.key, cert: tls.cert },
      });
      const pin = tls.fingerprint.replace(/:/g, '').toLowerCase();
      const backend = createTrueNASBackend(
        {
          serverId: 'tls',
          host: '127.0.0.1',
          port: sim.port,
          username: 'truenas_admin',
          tlsFingerprint: pin,
        },
        API_KEY,
      );
      try {
        assert.deepEqual(await backend.list(), []);
        assert.equal(sim.callCount('auth.login_ex'), 1);
      } finally {
        backend.dispose();
        await sim.close();
      }
    });

    test('refused with a wrong pin, and the API key is never sent', async () => {
      const sim = await startSimulator({
        version: '25.04',
        apiKey: API_KEY,
        tls: { key: tls.key, cert: tls.cert },
      });
      const wrong = 'AB:'.repeat(31) + 'AB';
      const backend = createTrueNASBackend(
        {
          serverId: 'tls',
          host: '127.0.0.1',
          port: sim.port,
          username: 'truenas_admin',
          tlsFingerprint: wrong,
        },
        API_KEY,
      );
      try {
        await assert.rejects(backend.list(), (e: Error) => {
          assert.ok(e instanceof SecurityError, String(e));
          assert.match(e.message, /does not match the pinned fingerprint/);
          assert.ok(e.message.includes(tls.fingerprint));
          return true;
        });
        assert.equal(sim.callCount('auth.login_ex'), 0);
        assert.equal(sim.callCount(), 0);
      } finally {
        backend.dispose();
        await sim.close();
      }
    });
  });
});
