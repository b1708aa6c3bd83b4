// Pooled connections to a peer that went away without a word (its sandbox was stopped or destroyed: packets go
// nowhere, nothing closes). A polite end() is never answered there; the pool must still tear the connection
// down, or its half-closed socket keeps the process alive until TCP gives up minutes later.
import assert from 'node:assert/strict';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Server as Ssh2Server } from 'ssh2';
import type { SshTarget } from '../../src/ssh/connect';
import { generateKeyPair } from '../../src/ssh/keys';
import { SshPool } from '../../src/ssh/pool';

/** A loopback hop to the SSH server whose connections can go silent: forward nothing, close nothing. */
async function startHop(port: number) {
  const clientSides: Socket[] = [];
  const silenced = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    clientSides.push(client);
    const upstream = tcpConnect(port, '127.0.0.1');
    client.on('data', (b: Buffer) => silenced.has(client) || upstream.write(b)).on('error', () => {});
    upstream.on('data', (b: Buffer) => silenced.has(client) || client.write(b)).on('error', () => {});
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    clientSides,
    silence: (client: Socket) => silenced.add(client),
    async close() {
      for (const s of clientSides) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Open TCP sockets of this process: a half-closed socket still counts (and still keeps the process alive). */
const openSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !ok(); await new Promise((r) => setTimeout(r, 50)))
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
}

describe('ssh pool: a peer that vanished', () => {
  const hostKey = generateKeyPair('dead-peer-host');
  const userKey = generateKeyPair('dead-peer-user');
  let server: Ssh2Server;
  let hop: Awaited<ReturnType<typeof startHop>>;
  let target: SshTarget;
  before(async () => {
    server = new Ssh2Server({ hostKeys: [hostKey.privateOpenSsh] }, (client) => {
      client.on('error', () => {});
      client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject()));
      client.on('session', (accept) =>
        accept().on('exec', (acceptExec) => {
          const stream = acceptExec();
          stream.exit(0);
          stream.end();
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    hop = await startHop(typeof address === 'object' && address ? address.port : 0);
    target = {
      host: '127.0.0.1',
      port: hop.port,
      username: 'someone',
      privateKey: userKey.privateOpenSsh,
      hostKey: hostKey.publicOpenSsh,
      label: 'vanishing peer',
    };
  });
  after(async () => {
    await hop?.close();
    await new Promise((resolve) => server.close(resolve));
  });

  for (const how of ['closeHost', 'dispose'] as const) {
    it(`${how} tears the connection down within seconds although the peer never answers`, async () => {
      const pool = new SshPool();
      assert.equal((await pool.exec(target, 'true')).exitCode, 0);
      const side = hop.clientSides.at(-1);
      assert.ok(side && !side.destroyed);
      hop.silence(side);
      const before = openSockets();
      if (how === 'closeHost') {
        await pool.closeHost('127.0.0.1');
        assert.equal(pool.size, 0);
      } else pool.dispose();
      // The polite end() is sent at once and never answered; the socket must still go.
      await until('the pool closes its socket to the silent peer', () => openSockets() < before, 5_000);
    });
  }
});
