// The REST client against real local servers: a unix-socket HTTP server answering Incus envelopes, and an
// HTTPS server (self-signed, like incusd) that requires a client certificate. No Incus needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSelfSignedCert } from '../lab/tls';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { IncusRestClient, certFingerprint, mapIncusError } from '../../src/backends/incus/rest-client';
import {
  AlreadyExistsError,
  NotAuthorizedError,
  NotFoundError,
  SecurityError,
  ServerError,
  ValidationError,
} from '../../src/core/errors';

function selfSigned(dir: string, name: string, san = 'IP:127.0.0.1'): { cert: string; key: string } {
  const { cert, key } = makeSelfSignedCert(dir, name, { san });
  return { cert, key };
}

test('Incus error envelopes map onto typed errors', () => {
  assert.ok(mapIncusError(404, 'Instance not found') instanceof NotFoundError);
  assert.ok(mapIncusError(409, 'Instance "x" already exists') instanceof AlreadyExistsError);
  assert.ok(mapIncusError(500, 'Instance "x" already exists') instanceof AlreadyExistsError);
  assert.ok(mapIncusError(403, 'not authorized') instanceof NotAuthorizedError);
  assert.ok(mapIncusError(400, 'Invalid config') instanceof ValidationError);
  const e = mapIncusError(500, 'boom');
  assert.ok(e instanceof ServerError);
  assert.equal(e.message, 'Incus: Boom.');
});

describe('over a unix socket', () => {
  let dir: string;
  let server: http.Server;
  const seen: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'px-rest-'));
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.socket.remotePort ?? ''}`);
      res.setHeader('Content-Type', 'application/json');
      if (req.url?.startsWith('/1.0/instances/missing')) {
        res.statusCode = 404;
        res.end(
          JSON.stringify({ type: 'error', error: 'Instance not found', error_code: 404, metadata: null }),
        );
      } else {
        res.end(JSON.stringify({ type: 'sync', status_code: 200, metadata: { url: req.url } }));
      }
    });
    await new Promise<void>((r) => server.listen(join(dir, 's.sock'), r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('sync replies, project query, typed errors, one reused connection', async () => {
    const c = new IncusRestClient({ socketPath: join(dir, 's.sock'), project: 'dev' });
    let connections = 0;
    server.on('connection', () => connections++);
    const r = await c.call<{ url: string }>('GET', '/1.0/instances', { query: { recursion: '2' } });
    assert.equal(r.metadata.url, '/1.0/instances?recursion=2&project=dev');
    await assert.rejects(c.call('GET', '/1.0/instances/missing'), NotFoundError);
    for (let i = 0; i < 5; i++) await c.call('GET', '/1.0');
    assert.equal(connections, 1, 'keep-alive: one connection for sequential calls');
    c.close();
  });
});

describe('over HTTPS with a client certificate and a pinned server certificate', () => {
  let dir: string;
  let server: https.Server;
  let port = 0;
  let serverPair: { cert: string; key: string };
  let clientPair: { cert: string; key: string };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'px-tls-'));
    // Like incusd: the certificate does not name the host we dial (no matching SAN).
    serverPair = selfSigned(dir, 'server', 'DNS:incus-node');
    clientPair = selfSigned(dir, 'client');
    server = https.createServer(
      { cert: serverPair.cert, key: serverPair.key, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        const fp = (peer.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
        const trusted = fp === certFingerprint(clientPair.cert);
        res.setHeader('Content-Type', 'application/json');
        res.statusCode = trusted ? 200 : 403;
        res.end(
          JSON.stringify(
            trusted
              ? { type: 'sync', status_code: 200, metadata: { auth: 'trusted' } }
              : { type: 'error', error: 'not authorized', error_code: 403, metadata: null },
          ),
        );
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the pinned certificate is accepted even though it does not name the host', async () => {
    const c = new IncusRestClient({
      url: `https://127.0.0.1:${port}`,
      clientCert: clientPair.cert,
      clientKey: clientPair.key,
      serverCert: serverPair.cert,
    });
    const r = await c.call<{ auth: string }>('GET', '/1.0');
    assert.equal(r.metadata.auth, 'trusted');
    c.close();
  });

  test('another certificate is refused with a SecurityError', async () => {
    const other = selfSigned(dir, 'other', 'IP:127.0.0.1');
    const c = new IncusRestClient({
      url: `https://127.0.0.1:${port}`,
      clientCert: clientPair.cert,
      clientKey: clientPair.key,
      serverCert: other.cert,
    });
    await assert.rejects(c.call('GET', '/1.0'), SecurityError);
    c.close();
  });

  test('a cluster member that refuses connections: calls move to the next online member, a 403 does not', async () => {
    // A port nobody listens on stands for the member whose daemon stopped.
    const gone = http.createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const deadPort = (gone.address() as { port: number }).port;
    await new Promise<void>((r) => gone.close(() => r()));
    const c = new IncusRestClient({
      url: `https://127.0.0.1:${deadPort}`,
      clientCert: clientPair.cert,
      clientKey: clientPair.key,
      serverCert: serverPair.cert,
    });
    await assert.rejects(c.call('GET', '/1.0'), /refused the connection/, 'no other member known yet');
    c.setClusterMembers([`https://127.0.0.1:${deadPort}`, `https://127.0.0.1:${port}`]);
    const r = await c.call<{ auth: string }>('GET', '/1.0');
    assert.equal(r.metadata.auth, 'trusted');
    assert.equal(c.endpoint, `https://127.0.0.1:${port}`, 'later calls go there directly');
    // Only a refused connection moves it: an answer (here a 403) is the server's word.
    assert.equal(c.failover(new NotAuthorizedError('no')), false);
    c.close();
    // Over a unix socket there is no other member to use.
    const local = new IncusRestClient({ socketPath: '/nonexistent/unix.socket' });
    local.setClusterMembers([`https://127.0.0.1:${port}`]);
    await assert.rejects(local.call('GET', '/1.0'), /no Incus unix socket/);
    local.close();
  });

  test('an untrusted client certificate gets NotAuthorized; plain http:// and a missing pin are refused', async () => {
    const stranger = selfSigned(dir, 'stranger');
    const c = new IncusRestClient({
      url: `https://127.0.0.1:${port}`,
      clientCert: stranger.cert,
      clientKey: stranger.key,
      serverCert: serverPair.cert,
    });
    await assert.rejects(c.call('GET', '/1.0'), NotAuthorizedError);
    c.close();
    assert.throws(
      () =>
        new IncusRestClient({
          url: `http://127.0.0.1:${port}`,
          clientCert: 'x',
          clientKey: 'y',
          serverCert: 'z',
        }),
      SecurityError,
    );
    assert.throws(
      () => new IncusRestClient({ url: `https://127.0.0.1:${port}`, clientCert: 'x', clientKey: 'y' }),
      /not pinned/,
    );
  });
});
