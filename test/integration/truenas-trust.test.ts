// First contact with a NAS that serves a self-signed certificate, with the production code against the simulator
// over TLS: the certificate is read before anything is sent, pinned, then used; a changed certificate is refused
// with both fingerprints; connection errors name host, port and transport; a refused key says what is wrong.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import {
  checkTrueNASEndpoint,
  createTrueNASBackend,
  LoginRefusedError,
  probeTrueNAS,
} from '../../src/backends/truenas/index';
import { UntrustedCertificateError } from '../../src/core/certificate';
import { ConnectionError } from '../../src/core/errors';
import { startSimulator } from '../sim/index';
import { API_KEY, selfSignedCert } from './truenas-fixtures';

const certA = selfSignedCert();
const certB = selfSignedCert();

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('trusting a self-signed TrueNAS certificate', () => {
  test('the certificate is read with a bare handshake, pinned, then the API and the login use the pin', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: API_KEY, tls: certA });
    const target = { host: '127.0.0.1', port: sim.port, secure: true };
    try {
      const first = await checkTrueNASEndpoint(target);
      assert.equal(first.trusted, false);
      assert.ok(!first.trusted);
      assert.equal(first.certificate.fingerprint, certA.fingerprint);
      assert.equal(first.certificate.subject, 'CN=truenas.local');
      assert.equal(first.certificate.selfSigned, true);
      assert.equal(first.pinned, undefined);
      assert.match(first.caProblem, /self[- ]signed|SELF_SIGNED/i);
      assert.equal(sim.callCount(), 0, 'nothing was called before the certificate was trusted');

      const pinned = { ...target, tlsFingerprint: first.certificate.fingerprint };
      const second = await checkTrueNASEndpoint(pinned);
      assert.deepEqual(
        { trusted: second.trusted, how: second.trusted ? second.how : undefined },
        { trusted: true, how: 'pin' },
      );
      assert.equal(sim.callCount('auth.mechanism_choices'), 1, 'the API answered before any key was asked');
      assert.equal(sim.callCount('auth.login_ex'), 0);

      const info = await probeTrueNAS({ serverId: 't', username: 'truenas_admin', ...pinned }, API_KEY);
      assert.match(info.version, /^TrueNAS 25\.10/);
      assert.equal(sim.callCount('auth.login_ex'), 1);
    } finally {
      await sim.close();
    }
  });

  test('a changed certificate is refused with both fingerprints, and the key is not sent', async () => {
    const port = await freePort();
    let sim = await startSimulator({ version: '25.04', apiKey: API_KEY, tls: certA, port });
    const config = {
      serverId: 'changed',
      host: '127.0.0.1',
      port,
      username: 'truenas_admin',
      tlsFingerprint: certA.fingerprint,
    };
    const backend = createTrueNASBackend(config, API_KEY);
    try {
      assert.deepEqual(await backend.list(), []);
      await sim.close();
      sim = await startSimulator({ version: '25.04', apiKey: API_KEY, tls: certB, port });
      backend.dispose();
      const again = createTrueNASBackend(config, API_KEY);
      try {
        await assert.rejects(again.list(), (e: Error) => {
          assert.ok(e instanceof UntrustedCertificateError, String(e));
          assert.equal(e.pinned, certA.fingerprint);
          assert.equal(e.fingerprint, certB.fingerprint);
          assert.equal(e.host, '127.0.0.1');
          assert.ok(e.message.includes(certA.fingerprint), e.message);
          assert.ok(e.message.includes(certB.fingerprint), e.message);
          assert.match(e.message, /The API key was not sent/);
          return true;
        });
      } finally {
        again.dispose();
      }
      assert.equal(sim.callCount(), 0, 'the new server saw no call, so no key');
      const check = await checkTrueNASEndpoint({
        host: '127.0.0.1',
        port,
        secure: true,
        tlsFingerprint: certA.fingerprint,
      });
      assert.ok(!check.trusted);
      assert.equal(check.pinned, certA.fingerprint);
      assert.equal(check.certificate.fingerprint, certB.fingerprint);
      assert.equal(sim.callCount(), 0);
    } finally {
      backend.dispose();
      await sim.close();
    }
  });
});

describe('when the editor replaces the HTTPS agent (VS Code proxy support)', () => {
  // VS Code patches http.request and https.request so that every request an extension makes goes through its own
  // agent, which opens the socket itself (so a request's createConnection never runs). Requests with a socketPath
  // are passed through untouched (@vscode/proxy-agent createHttpPatch). Reproduced here.
  function replaceAgents(): () => void {
    const restores = [http, https].map((mod) => {
      const original = mod.request;
      const patched = (...args: unknown[]) => {
        const options = args.find(
          (a) => a && typeof a === 'object' && !(a instanceof URL),
        ) as http.RequestOptions;
        if (!options.socketPath) options.agent = new mod.Agent({ keepAlive: false });
        return (original as (...a: unknown[]) => http.ClientRequest)(...args);
      };
      Object.assign(mod, { request: patched });
      return () => Object.assign(mod, { request: original });
    });
    return () => restores.forEach((r) => r());
  }

  test('our own TLS socket still carries the upgrade: the pin passes, another certificate is refused', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: API_KEY, tls: certA });
    const restore = replaceAgents();
    try {
      const pinned = { host: '127.0.0.1', port: sim.port, secure: true, username: 'truenas_admin' };
      const info = await probeTrueNAS(
        { serverId: 'p', ...pinned, tlsFingerprint: certA.fingerprint },
        API_KEY,
      );
      assert.match(info.version, /^TrueNAS 25\.10/);
      assert.equal(sim.callCount('auth.login_ex'), 1);
      await assert.rejects(
        probeTrueNAS({ serverId: 'p', ...pinned, tlsFingerprint: certB.fingerprint }, API_KEY),
        (e: Error) => e instanceof UntrustedCertificateError && e.pinned === certB.fingerprint,
      );
      await assert.rejects(probeTrueNAS({ serverId: 'p', ...pinned }, API_KEY), UntrustedCertificateError);
      assert.equal(sim.callCount('auth.login_ex'), 1, 'no key went to a certificate that was not trusted');
    } finally {
      restore();
      await sim.close();
    }
  });
});

describe('connection errors name what was tried', () => {
  test('nothing listening: host, port and wss/ws in the message, from the endpoint check and the client', async () => {
    const port = await freePort();
    await assert.rejects(checkTrueNASEndpoint({ host: '127.0.0.1', port, secure: true }), (e: Error) => {
      assert.ok(e instanceof ConnectionError, String(e));
      assert.match(
        e.message,
        new RegExp(`Cannot connect to wss://127\\.0\\.0\\.1:${port} \\(TLS\\): connection refused`),
      );
      return true;
    });
    await assert.rejects(
      probeTrueNAS(
        { serverId: 'x', host: '127.0.0.1', port, secure: false, username: 'truenas_admin' },
        API_KEY,
      ),
      new RegExp(`Cannot connect to ws://127\\.0\\.0\\.1:${port} \\(plain, no TLS\\): connection refused`),
    );
  });

  test('wss:// to a plain ws:// server says it does not speak TLS', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: API_KEY });
    try {
      await assert.rejects(
        checkTrueNASEndpoint({ host: '127.0.0.1', port: sim.port, secure: true }),
        /Cannot connect to wss:\/\/127\.0\.0\.1:\d+ \(TLS\): the server does not speak TLS on that port/,
      );
      assert.equal(sim.callCount(), 0);
    } finally {
      await sim.close();
    }
  });
});

describe('a refused API key says what is wrong', () => {
  test('a valid key for another user names its owner', async () => {
    const sim = await startSimulator({
      version: '25.10',
      apiKey: API_KEY,
      tls: certA,
      username: 'truenas_admin',
    });
    try {
      const config = {
        serverId: 'u',
        host: '127.0.0.1',
        port: sim.port,
        username: 'root',
        tlsFingerprint: certA.fingerprint,
      };
      await assert.rejects(probeTrueNAS(config, API_KEY), (e: Error) => {
        assert.ok(e instanceof LoginRefusedError, String(e));
        assert.equal(e.keyOwner, 'truenas_admin');
        assert.equal(
          e.message,
          'The API key is valid but belongs to user "truenas_admin", not "root": use "truenas_admin" as the user.',
        );
        return true;
      });
      const ok = await probeTrueNAS({ ...config, username: 'truenas_admin' }, API_KEY);
      assert.match(ok.version, /^TrueNAS 25\.10/);
    } finally {
      await sim.close();
    }
  });

  test('a wrong key is refused for every user, without naming anyone', async () => {
    const sim = await startSimulator({
      version: '25.04',
      apiKey: API_KEY,
      tls: certA,
      username: 'truenas_admin',
    });
    try {
      const config = {
        serverId: 'k',
        host: '127.0.0.1',
        port: sim.port,
        username: 'truenas_admin',
        tlsFingerprint: certA.fingerprint,
      };
      const wrong = '1-' + 'b'.repeat(64);
      await assert.rejects(probeTrueNAS(config, wrong), (e: Error) => {
        assert.ok(e instanceof LoginRefusedError, String(e));
        assert.equal(e.keyOwner, undefined);
        assert.match(
          e.message,
          /does not accept this API key for any user: it is mistyped, or it was deleted or revoked/,
        );
        assert.ok(!e.message.includes('bbbbbbbb'));
        return true;
      });
    } finally {
      await sim.close();
    }
  });

  test('a key revoked for insecure transport: EXPIRED first, then refused for every user', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: API_KEY, treatAsRemote: true });
    try {
      const config = {
        serverId: 'r',
        host: '127.0.0.1',
        port: sim.port,
        secure: false,
        username: 'truenas_admin',
      };
      await assert.rejects(probeTrueNAS(config, API_KEY), (e: Error) => {
        assert.ok(e instanceof LoginRefusedError, String(e));
        assert.equal(e.response, 'EXPIRED');
        assert.match(
          e.message,
          /expired or was revoked — TrueNAS revokes a key that was sent over an insecure/,
        );
        return true;
      });
      await assert.rejects(probeTrueNAS(config, API_KEY), /does not accept this API key for any user/);
    } finally {
      await sim.close();
    }
  });
});
