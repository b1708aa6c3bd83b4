import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AlreadyExistsError,
  NotAuthenticatedError,
  NotAuthorizedError,
  NotFoundError,
  ServerError,
  ValidationError,
} from '../../src/core/errors';
import { registerSecret } from '../../src/core/log';
import {
  cleanReason,
  fieldProblems,
  isBusyError,
  isNotAuthenticated,
  mapJobFailure,
  mapRpcError,
  RpcCallError,
} from '../../src/backends/truenas/errors';
import { checkLoginResult } from '../../src/backends/truenas/auth';

test('get_instance of an unknown instance (-32602, "VirtInstance x does not exist") is NotFound', () => {
  const err = new RpcCallError('virt.instance.get_instance', -32602, 'Invalid params', {
    error: 22,
    errname: 'EINVAL',
    reason: '[ENOENT] None: VirtInstance px-nope does not exist',
    extra: [[null, 'VirtInstance px-nope does not exist', 2]],
  });
  const mapped = mapRpcError(err, 'Reading sandbox "nope"');
  assert.ok(mapped instanceof NotFoundError);
  assert.equal(mapped.message, 'VirtInstance px-nope does not exist.');
});

test('MatchNotFound (query get:true) is NotFound', () => {
  const err = new RpcCallError('virt.instance.query', -32001, 'Method call error', {
    error: 22,
    errname: 'EINVAL',
    reason: 'MatchNotFound()',
  });
  assert.ok(mapRpcError(err, 'Reading sandbox "x"') instanceof NotFoundError);
});

test('207 ENOTAUTHENTICATED is NotAuthenticated; EACCES is NotAuthorized', () => {
  const e207 = new RpcCallError('virt.instance.query', -32001, 'Method call error', {
    error: 207,
    errname: 'ENOTAUTHENTICATED',
    reason: '[ENOTAUTHENTICATED] Not authenticated',
  });
  assert.ok(isNotAuthenticated(e207));
  assert.ok(mapRpcError(e207, 'Listing') instanceof NotAuthenticatedError);
  const eacces = new RpcCallError('zfs.dataset.delete', -32001, 'Method call error', {
    error: 13,
    errname: 'EACCES',
    reason: '[EACCES] Not authorized',
  });
  const mapped = mapRpcError(eacces, 'Cloning "a"');
  assert.ok(mapped instanceof NotAuthorizedError);
  assert.match(mapped.message, /not allowed/);
});

test('EEXIST snapshot create is AlreadyExists; other call errors are one-sentence ServerErrors', () => {
  const dup = new RpcCallError('zfs.snapshot.create', -32001, 'Method call error', {
    error: 17,
    errname: 'EEXIST',
    reason: '[EEXIST] Failed to snapshot tank/.ix-virt/containers/px-a@x: dataset already exists',
  });
  assert.ok(mapRpcError(dup, 'Creating checkpoint') instanceof AlreadyExistsError);
  const other = new RpcCallError('virt.instance.create', -32001, 'Method call error', {
    error: 14,
    errname: 'EFAULT',
    reason: '[EFAULT] Virtualization not initialized.',
    trace: { formatted: 'Traceback (most recent call last):\n  File …' },
  });
  const mapped = mapRpcError(other, 'Creating sandbox "a"');
  assert.ok(mapped instanceof ServerError);
  assert.equal(mapped.message, 'Creating sandbox "a" failed: Virtualization not initialized.');
  assert.doesNotMatch(mapped.message, /Traceback/);
});

test('-32601 and -32000 read clearly', () => {
  assert.match(
    mapRpcError(new RpcCallError('foo.bar', -32601, 'Method does not exist'), 'Doing').message,
    /does not know the method foo\.bar/,
  );
  const busy = new RpcCallError(
    'virt.instance.query',
    -32000,
    'Maximum number of concurrent calls (20) has exceeded',
  );
  assert.ok(isBusyError(busy));
  assert.ok(
    isBusyError(
      new RpcCallError('x', -32001, 'Method call error', { error: 16, errname: 'EBUSY', reason: 'busy' }),
    ),
  );
  assert.ok(
    isBusyError(
      new RpcCallError('x', -32001, 'Method call error', { error: 11, errname: 'EAGAIN', reason: 'again' }),
    ),
  );
  assert.ok(
    !isBusyError(
      new RpcCallError('x', -32001, 'Method call error', { error: 14, errname: 'EFAULT', reason: 'x' }),
    ),
  );
});

test('a FAILED create job with a validation list becomes a ValidationError with per-field problems', () => {
  const mapped = mapJobFailure(
    {
      method: 'virt.instance.create',
      state: 'FAILED',
      error: '[EINVAL] virt_instance_create.memory: Value error, Value must be 32MiB or larger\n',
      exc_info: {
        type: 'VALIDATION',
        errno: null,
        extra: [
          ['virt_instance_create.memory', 'Value error, Value must be 32MiB or larger', 22],
          ['virt_instance_create.foo', 'Extra inputs are not permitted', 22],
        ],
      },
    },
    'Creating sandbox "a"',
  );
  assert.ok(mapped instanceof ValidationError);
  assert.deepEqual(mapped.problems, [
    { field: 'memory', message: 'Value must be 32MiB or larger' },
    { field: 'foo', message: 'Extra inputs are not permitted' },
  ]);
  assert.equal(
    mapped.message,
    'Creating sandbox "a" was refused: memory: Value must be 32MiB or larger; foo: Extra inputs are not permitted.',
  );
});

test('a duplicate-name job failure is AlreadyExists; a missing instance job is NotFound', () => {
  const dup = mapJobFailure(
    {
      state: 'FAILED',
      error: "[EINVAL] virt_instance_create.name: Name 'px-a' already exists\n",
      exc_info: {
        type: 'VALIDATION',
        errno: null,
        extra: [['virt_instance_create.name', "Name 'px-a' already exists", 22]],
      },
    },
    'Creating sandbox "a"',
  );
  assert.ok(dup instanceof AlreadyExistsError);
  assert.equal(dup.message, 'Creating sandbox "a": Name \'px-a\' already exists.');
  const gone = mapJobFailure(
    {
      state: 'FAILED',
      error: '[ENOENT] None: VirtInstance px-nope does not exist',
      exc_info: { type: 'VALIDATION', errno: 2, extra: [[null, 'VirtInstance px-nope does not exist', 2]] },
    },
    'Starting sandbox "nope"',
  );
  assert.ok(gone instanceof NotFoundError);
  const incus = mapJobFailure(
    { state: 'FAILED', error: '[EFAULT] Instance not found', exc_info: { type: 'CallError', errno: 14 } },
    'Stopping',
  );
  assert.ok(incus instanceof NotFoundError);
});

test('helpers: cleanReason and fieldProblems', () => {
  assert.equal(
    cleanReason('[EINVAL] virt_instance_create.name: Name x already exists\n'),
    'Name x already exists',
  );
  assert.equal(cleanReason('[EFAULT] Instance not found'), 'Instance not found');
  assert.deepEqual(fieldProblems([['a.b', 'bad', 22], 'junk', [null, 'whole', 22]]), [
    { field: 'a.b', message: 'bad' },
    { field: '', message: 'whole' },
  ]);
  assert.deepEqual(fieldProblems(null), []);
});

test('an API key never appears in a mapped error, even if the server echoes it', () => {
  const key = '7-' + 'k'.repeat(64);
  registerSecret(key);
  const err = new RpcCallError('auth.login_ex', -32602, 'Invalid params', {
    error: 22,
    errname: 'EINVAL',
    reason: `[EINVAL] login_data.api_key: bad key ${key}`,
    extra: [['login_data.api_key', `bad key ${key}`, 22]],
  });
  const mapped = mapRpcError(err, 'Logging in');
  assert.doesNotMatch(mapped.message, /kkkkkkkk/);
  assert.match(mapped.message, /«redacted»/);
  const job = mapJobFailure({ state: 'FAILED', error: `[EFAULT] boom ${key}` }, 'Doing');
  assert.doesNotMatch(job.message, /kkkkkkkk/);
});

test('every login response_type gets a clear message', () => {
  assert.doesNotThrow(() => checkLoginResult({ response_type: 'SUCCESS' }, 'nas', 'admin', false));
  assert.throws(
    () => checkLoginResult({ response_type: 'AUTH_ERR' }, 'nas', 'admin', false),
    (e: Error) => {
      assert.ok(e instanceof NotAuthenticatedError);
      return /refused the API key for user "admin"/.test(e.message);
    },
  );
  assert.throws(
    () => checkLoginResult({ response_type: 'EXPIRED' }, 'nas', 'admin', true),
    /revoked.*insecure \(non-TLS\)/,
  );
  assert.throws(
    () => checkLoginResult({ response_type: 'EXPIRED' }, 'nas', 'admin', false),
    /expired or was revoked/,
  );
  assert.throws(
    () => checkLoginResult({ response_type: 'OTP_REQUIRED', username: 'admin' }, 'nas', 'admin', false),
    /one-time password/,
  );
  assert.throws(
    () =>
      checkLoginResult(
        { response_type: 'REDIRECT', urls: ['wss://nas-b/api/current'] },
        'nas',
        'admin',
        false,
      ),
    /standby controller.*nas-b/,
  );
  assert.throws(() => checkLoginResult(null, 'nas', 'admin', false), /unexpected response/);
});
