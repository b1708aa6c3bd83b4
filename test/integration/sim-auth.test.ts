// auth.* on the simulator: API-key login, AUTH_ERR, revocation over insecure transport, TLS, 207 before login.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimServer } from '../sim/index.js';
import { RawClient } from '../sim/rawclient.js';
import { makeSelfSignedCert } from '../lab/tls';

const KEY = `3-${'k'.repeat(64)}`;
const NOT_AUTHENTICATED = {
  error: 207,
  errname: 'ENOTAUTHENTICATED',
  reason: '[ENOTAUTHENTICATED] Not authenticated',
};

function loginEx(c: RawClient, apiKey: string, username = 'truenas_admin') {
  return c.call<Record<string, unknown>>('auth.login_ex', [
    { mechanism: 'API_KEY_PLAIN', username, api_key: apiKey },
  ]);
}

describe('simulator auth (25.10, loopback)', () => {
  let sim: SimServer;
  before(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: KEY, username: 'pixels' });
  });
  after(async () => sim.close());

  it('answers 207 ENOTAUTHENTICATED before login, but core.ping works on 25.10', async () => {
    const c = await RawClient.connect(sim.url);
    for (const method of ['virt.instance.query', 'system.version', 'core.subscribe', 'auth.me']) {
      const r = await c.request(method, []);
      assert.equal(r.error?.code, -32001, method);
      assert.equal(r.error?.message, 'Method call error');
      assert.deepEqual(
        { ...r.error?.data, trace: undefined, extra: undefined },
        { ...NOT_AUTHENTICATED, trace: undefined, extra: undefined },
      );
    }
    assert.equal(await c.call('core.ping'), 'pong');
    c.close();
  });

  it('logs in with the key of its user; wrong key or user gives AUTH_ERR, not an error', async () => {
    const c = await RawClient.connect(sim.url);
    assert.deepEqual(await loginEx(c, `3-${'x'.repeat(64)}`, 'pixels'), { response_type: 'AUTH_ERR' });
    assert.deepEqual(await loginEx(c, KEY, 'truenas_admin'), { response_type: 'AUTH_ERR' });
    assert.deepEqual(await loginEx(c, 'garbage', 'pixels'), { response_type: 'AUTH_ERR' });
    assert.equal((await c.request('system.version')).error?.data?.error, 207);
    const ok = await loginEx(c, KEY, 'pixels');
    assert.equal(ok.response_type, 'SUCCESS');
    assert.equal(ok.authenticator, 'LEVEL_1');
    const info = ok.user_info as { pw_name: string; privilege: { roles: { $set: string[] } } };
    assert.equal(info.pw_name, 'pixels');
    assert.ok(info.privilege.roles.$set.includes('FULL_ADMIN'));
    assert.equal(await c.call('system.version'), 'TrueNAS-25.10.1');
    const me = await c.call<{ pw_name: string; privilege: { roles: unknown } }>('auth.me');
    assert.equal(me.pw_name, 'pixels');
    assert.ok(Array.isArray((me.privilege.roles as { $set: unknown }).$set), 'roles travel as an ejson $set');
    c.close();
  });

  it('honours login_options.user_info=false and validates login_data', async () => {
    const c = await RawClient.connect(sim.url);
    const r = await c.call('auth.login_ex', [
      { mechanism: 'API_KEY_PLAIN', username: 'pixels', api_key: KEY, login_options: { user_info: false } },
    ]);
    assert.deepEqual(r, { response_type: 'SUCCESS', user_info: null, authenticator: 'LEVEL_1' });
    const missing = await c.request('auth.login_ex', [{ mechanism: 'API_KEY_PLAIN', username: 'pixels' }]);
    assert.equal(missing.error?.code, -32602);
    assert.deepEqual(missing.error?.data?.extra, [
      ['login_data.API_KEY_PLAIN.api_key', 'Field required', 22],
    ]);
    const bad = await c.request('auth.login_ex', [{ mechanism: 'MAGIC' }]);
    assert.equal(bad.error?.code, -32602);
    assert.match(String(bad.error?.data?.reason), /Input tag 'MAGIC' found using 'mechanism'/);
    assert.deepEqual(
      await c.call('auth.login_ex', [{ mechanism: 'PASSWORD_PLAIN', username: 'pixels', password: 'x' }]),
      {
        response_type: 'AUTH_ERR',
      },
    );
    c.close();
  });

  it('supports auth.login_with_api_key and auth.logout', async () => {
    const c = await RawClient.connect(sim.url);
    assert.equal(await c.call('auth.login_with_api_key', [`3-${'z'.repeat(64)}`]), false);
    assert.equal(await c.call('auth.login_with_api_key', [KEY]), true);
    assert.equal(await c.call('core.ping'), 'pong');
    assert.equal(await c.call('auth.logout'), true);
    assert.equal((await c.request('virt.instance.query')).error?.data?.error, 207);
    c.close();
  });
});

describe('simulator auth on 25.04', () => {
  it('needs a login for core.ping too', async () => {
    const sim = await startSimulator({ version: '25.04', apiKey: KEY });
    const c = await RawClient.connect(sim.url);
    assert.equal((await c.request('core.ping')).error?.data?.error, 207);
    await c.login(KEY);
    assert.equal(await c.call('core.ping'), 'pong');
    assert.equal(await c.call('system.version'), 'TrueNAS-25.04.2.6');
    c.close();
    await sim.close();
  });
});

describe('simulator: what a real server answers before login', () => {
  // authentication_required=False / @no_auth_required in the middleware source (TS-25.04.2.6, TS-25.10.6,
  // TS-26.0.0-BETA.3); everything else gets 207 ENOTAUTHENTICATED.
  const common: [string, unknown[]][] = [
    ['auth.mechanism_choices', []],
    ['core.set_options', [{ private_methods: true }]],
    ['system.boot_id', []],
    ['system.advanced.login_banner', []],
    ['truenas.managed_by_truecommand', []],
    ['user.has_local_administrator_set_up', []],
  ];
  const refused = ['system.version', 'system.info', 'core.get_jobs', 'pool.dataset.query', 'filesystem.stat'];
  for (const version of ['25.04', '25.10', '26'] as const) {
    it(`${version}: answers exactly the unauthenticated methods`, async () => {
      const sim = await startSimulator({ version, apiKey: KEY, rateLimit: true });
      const c = await RawClient.connect(sim.url);
      try {
        for (const [method, params] of common) {
          const res = await c.request(method, params);
          assert.equal(res.error, undefined, `${method}: ${JSON.stringify(res.error)}`);
        }
        assert.equal(await c.call('system.boot_id'), await c.call('system.boot_id'));
        assert.equal(await c.call('user.has_local_administrator_set_up'), true);
        const setup = await c.request('user.setup_local_administrator', ['truenas_admin', 'pw']);
        assert.equal(setup.error?.data?.reason, '[EEXIST] Local administrator is already set up');
        const ping = await c.request('core.ping');
        if (version === '25.04')
          assert.equal(ping.error?.data?.error, 207, 'core.ping needs a login on 25.04');
        else assert.equal(ping.result, 'pong');
        for (const method of refused) {
          assert.equal((await c.request(method)).error?.data?.error, 207, `${method} before login`);
        }
        // rate_limit=False: iX's clients call core.set_options on every connect.
        for (let i = 0; i < 25; i += 1)
          assert.equal((await c.request('core.set_options', [{}])).error, undefined);
      } finally {
        c.close();
        await sim.close();
      }
    });
  }
});

describe('simulator rate limit (opt-in)', () => {
  it('answers the 21st unauthenticated auth.login_ex within a minute with EBUSY "Rate Limit Exceeded"', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: KEY, rateLimit: true });
    const c = await RawClient.connect(sim.url);
    for (let i = 0; i < 20; i += 1) {
      assert.deepEqual(await loginEx(c, `3-${'x'.repeat(64)}`), { response_type: 'AUTH_ERR' });
    }
    const limited = await c.request('auth.login_ex', [
      { mechanism: 'API_KEY_PLAIN', username: 'truenas_admin', api_key: KEY },
    ]);
    assert.equal(limited.error?.code, -32001);
    assert.equal(limited.error?.data?.reason, '[EBUSY] Rate Limit Exceeded');
    assert.equal(await c.call('core.ping'), 'pong', 'counted per method');
    c.close();
    await sim.close();
  });
});

describe('simulator API-key revocation (treatAsRemote)', () => {
  let dir: string;
  let tls: { key: string; cert: string };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sim-tls-'));
    const { key, cert } = makeSelfSignedCert(dir, 'sim', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
    tls = { key, cert };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('revokes a valid key used over ws:// and answers EXPIRED, then AUTH_ERR for ever', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: KEY, treatAsRemote: true });
    const c = await RawClient.connect(sim.url);
    assert.deepEqual(
      await loginEx(c, `3-${'w'.repeat(64)}`),
      { response_type: 'AUTH_ERR' },
      'a wrong key is not revoked',
    );
    assert.deepEqual(await loginEx(c, KEY), { response_type: 'EXPIRED' });
    assert.deepEqual(await loginEx(c, KEY), { response_type: 'AUTH_ERR' });
    assert.equal(await c.call('auth.login_with_api_key', [KEY]), false);
    assert.equal((await c.request('virt.instance.query')).error?.data?.error, 207);
    c.close();
    await sim.close();
  });

  it('does not revoke over TLS (wss://, pinned self-signed certificate)', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: KEY, treatAsRemote: true, tls });
    assert.match(sim.url, /^wss:\/\/127\.0\.0\.1:\d+\/api\/current$/);
    const c = await RawClient.connect(sim.url, { ca: tls.cert });
    assert.equal((await loginEx(c, KEY)).response_type, 'SUCCESS');
    c.close();
    const d = await RawClient.connect(sim.url, { ca: tls.cert });
    assert.equal((await loginEx(d, KEY)).response_type, 'SUCCESS', 'still valid after use over TLS');
    d.close();
    await sim.close();
  });
});
