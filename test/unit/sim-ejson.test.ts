// ejson encoding of the simulator (ejson.ts) and the error formatting built on it (errors.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DateOnly, decode, encode, Ipv4Interface, stringify, TimeOfDay } from '../sim/ejson.js';
import {
  CallError,
  ERRNO,
  toJobFailure,
  toRpcError,
  ValidationErrors,
  instanceNotFound,
} from '../sim/errors.js';

describe('sim ejson', () => {
  it('encodes dates, sets, date-only, time and ip interfaces with their tags', () => {
    assert.deepEqual(encode({ at: new Date(1730000000000), roles: new Set(['A', 'B']) }), {
      at: { $date: 1730000000000 },
      roles: { $set: ['A', 'B'] },
    });
    assert.deepEqual(
      encode([new DateOnly('2025-01-06'), new TimeOfDay('10:00:00'), new Ipv4Interface('10.0.0.1/24')]),
      [{ $type: 'date', $value: '2025-01-06' }, { $time: '10:00:00' }, { $ipv4_interface: '10.0.0.1/24' }],
    );
    assert.equal(stringify({ a: null, b: [1, 'x', true] }), '{"a":null,"b":[1,"x",true]}');
  });

  it('decodes the tags back, and leaves look-alikes with extra keys alone', () => {
    const value = decode({
      at: { $date: 5 },
      s: { $set: [1, 2] },
      d: { $type: 'date', $value: '2025-01-06' },
      t: { $time: '01:02:03' },
    }) as Record<string, unknown>;
    assert.ok(value.at instanceof Date && value.at.getTime() === 5);
    assert.ok(value.s instanceof Set && value.s.has(2));
    assert.ok(value.d instanceof DateOnly && value.d.iso === '2025-01-06');
    assert.ok(value.t instanceof TimeOfDay);
    assert.deepEqual(decode({ $date: 5, other: 1 }), { $date: 5, other: 1 });
    const round = decode(JSON.parse(stringify({ when: new Date(42), tags: new Set(['x']) }))) as Record<
      string,
      unknown
    >;
    assert.deepEqual(encode(round as never), { when: { $date: 42 }, tags: { $set: ['x'] } });
  });
});

describe('sim error formatting', () => {
  it('formats CallError as -32001 with the data shape', () => {
    const body = toRpcError(new CallError('Virtualization not initialized.'));
    assert.equal(body.code, -32001);
    assert.equal(body.message, 'Method call error');
    const data = body.data as Record<string, unknown>;
    assert.equal(data.error, 14);
    assert.equal(data.errname, 'EFAULT');
    assert.equal(data.reason, '[EFAULT] Virtualization not initialized.');
    assert.equal(data.extra, null);
    assert.deepEqual(Object.keys(data.trace as object).sort(), ['class', 'formatted', 'frames', 'repr']);
    assert.equal(
      (
        toRpcError(new CallError('Not authenticated', ERRNO.ENOTAUTHENTICATED)).data as Record<
          string,
          unknown
        >
      ).errname,
      'ENOTAUTHENTICATED',
    );
  });

  it('formats validation errors as -32602 EINVAL with extra triples, one line per error', () => {
    const many = new ValidationErrors([
      ['virt_instance_create.image', 'Field required', 22],
      ['virt_instance_create.foo', 'Extra inputs are not permitted', 22],
    ]);
    const body = toRpcError(many);
    assert.equal(body.code, -32602);
    assert.equal(body.message, 'Invalid params');
    const data = body.data as Record<string, unknown>;
    assert.equal(data.error, 22);
    assert.equal(
      data.reason,
      '[EINVAL] virt_instance_create.image: Field required\n[EINVAL] virt_instance_create.foo: Extra inputs are not permitted\n',
    );
    assert.deepEqual(data.extra, many.items);
    const missing = toRpcError(instanceNotFound('VirtInstance nope does not exist')).data as Record<
      string,
      unknown
    >;
    assert.equal(missing.reason, '[ENOENT] None: VirtInstance nope does not exist');
    assert.equal(missing.error, 22, 'data.error is always EINVAL for validation');
  });

  it('builds job error/exc_info like job.py', () => {
    const single = toJobFailure(instanceNotFound('VirtInstance x does not exist'));
    assert.deepEqual(single.excInfo, {
      repr: "InstanceNotFound('VirtInstance x does not exist')",
      type: 'VALIDATION',
      errno: 2,
      extra: [[null, 'VirtInstance x does not exist', 2]],
    });
    const many = toJobFailure(new ValidationErrors([['a', 'b', 22]]));
    assert.equal(many.excInfo.errno, null);
    assert.equal(many.error, '[EINVAL] a: b\n');
    const call = toJobFailure(new CallError('Instance not found'));
    assert.deepEqual(
      { ...call.excInfo, repr: undefined },
      { repr: undefined, type: 'CallError', errno: 14, extra: null },
    );
    assert.equal(call.error, '[EFAULT] Instance not found');
  });
});
