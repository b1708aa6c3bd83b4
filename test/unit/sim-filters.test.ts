// filter_list semantics of the simulator (filters.ts): operators, C prefix, OR, dotted names, options.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SimObject } from '../sim/ejson.js';
import { MatchNotFound, ValidationErrors } from '../sim/errors.js';
import { query } from '../sim/filters.js';

const rows: SimObject[] = [
  {
    id: 1,
    name: 'px-web',
    status: 'RUNNING',
    memory: 4096,
    tags: ['a', 'b'],
    image: { os: 'Ubuntu' },
    at: new Date(1000),
  },
  {
    id: 2,
    name: 'px-agent',
    status: 'RUNNING',
    memory: 8192,
    tags: ['b'],
    image: { os: 'Debian' },
    at: new Date(3000),
  },
  {
    id: 3,
    name: 'PX-Old',
    status: 'STOPPED',
    memory: null,
    tags: [],
    image: { os: 'Ubuntu' },
    at: new Date(2000),
  },
  {
    id: 4,
    name: 'other',
    status: 'STOPPED',
    memory: 1024,
    tags: ['c'],
    image: { os: 'Alpine' },
    at: new Date(4000),
  },
];

const ids = (value: unknown) => (value as SimObject[]).map((r) => r.id);

describe('sim filters', () => {
  it('supports every operator', () => {
    assert.deepEqual(ids(query(rows, [['status', '=', 'RUNNING']], {})), [1, 2]);
    assert.deepEqual(ids(query(rows, [['status', '!=', 'RUNNING']], {})), [3, 4]);
    assert.deepEqual(ids(query(rows, [['memory', '>', 4096]], {})), [2]);
    assert.deepEqual(ids(query(rows, [['memory', '>=', 4096]], {})), [1, 2]);
    assert.deepEqual(ids(query(rows, [['memory', '<', 4096]], {})), [4], 'null never compares');
    assert.deepEqual(ids(query(rows, [['memory', '<=', 4096]], {})), [1, 4]);
    assert.deepEqual(ids(query(rows, [['name', '~', 'px-[wa]']], {})), [1, 2]);
    assert.deepEqual(
      ids(query(rows, [['name', '~', 'web']], {})),
      [],
      '~ is re.match: anchored at the start',
    );
    assert.deepEqual(ids(query(rows, [['id', 'in', [1, 3]]], {})), [1, 3]);
    assert.deepEqual(ids(query(rows, [['id', 'nin', [1, 3]]], {})), [2, 4]);
    assert.deepEqual(ids(query(rows, [['tags', 'rin', 'b']], {})), [1, 2]);
    assert.deepEqual(ids(query(rows, [['tags', 'rnin', 'b']], {})), [3, 4]);
    assert.deepEqual(ids(query(rows, [['name', '^', 'px-']], {})), [1, 2]);
    assert.deepEqual(ids(query(rows, [['name', '!^', 'px-']], {})), [3, 4]);
    assert.deepEqual(ids(query(rows, [['name', '$', 'web']], {})), [1]);
    assert.deepEqual(ids(query(rows, [['name', '!$', 'web']], {})), [2, 3, 4]);
  });

  it('makes C-prefixed operators case-insensitive and refuses C~', () => {
    assert.deepEqual(ids(query(rows, [['name', 'C^', 'px-']], {})), [1, 2, 3]);
    assert.deepEqual(ids(query(rows, [['name', 'C=', 'px-old']], {})), [3]);
    assert.deepEqual(ids(query(rows, [['name', 'Cin', ['PX-WEB', 'OTHER']]], {})), [1, 4]);
    assert.throws(() => query(rows, [['name', 'C~', 'px']], {}), ValidationErrors);
    assert.throws(() => query(rows, [['name', 'LIKE', 'px']], {}), /Invalid operation: LIKE/);
    assert.throws(() => query(rows, [['name', '=']], {}), ValidationErrors);
  });

  it('ANDs top-level filters, supports OR branches and dotted names, and compares dates', () => {
    assert.deepEqual(
      ids(
        query(
          rows,
          [
            ['status', '=', 'RUNNING'],
            ['image.os', '=', 'Ubuntu'],
          ],
          {},
        ),
      ),
      [1],
    );
    assert.deepEqual(
      ids(
        query(
          rows,
          [
            [
              'OR',
              [
                ['id', '=', 1],
                ['image.os', '=', 'Alpine'],
              ],
            ],
          ],
          {},
        ),
      ),
      [1, 4],
    );
    assert.deepEqual(
      ids(
        query(
          rows,
          [
            [
              'OR',
              [
                [
                  ['status', '=', 'STOPPED'],
                  ['image.os', '=', 'Ubuntu'],
                ],
                ['id', '=', 2],
              ],
            ],
          ],
          {},
        ),
      ),
      [2, 3],
      'a branch may be a list of ANDed filters',
    );
    assert.deepEqual(ids(query(rows, [['at', '>', new Date(1500)]], {})), [2, 3, 4]);
    assert.deepEqual(ids(query(rows, [['image.missing', '=', null]], {})), [1, 2, 3, 4]);
  });

  it('implements count, get, select, order_by, offset and limit', () => {
    assert.equal(query(rows, [['status', '=', 'STOPPED']], { count: true }), 2);
    assert.deepEqual(query(rows, [['id', '=', 2]], { get: true, select: ['name'] }), { name: 'px-agent' });
    assert.throws(() => query(rows, [['id', '=', 9]], { get: true }), MatchNotFound);
    assert.deepEqual(ids(query(rows, [], { order_by: ['-memory'] })), [2, 1, 4, 3], 'nulls last by default');
    assert.deepEqual(ids(query(rows, [], { order_by: ['nulls_first:memory'] })), [3, 4, 1, 2]);
    assert.deepEqual(ids(query(rows, [], { order_by: ['status', '-id'] })), [2, 1, 4, 3]);
    assert.deepEqual(ids(query(rows, [], { offset: 1, limit: 2 })), [2, 3]);
    assert.deepEqual(query(rows, [['id', '=', 1]], { select: [['image.os', 'os'], 'name', 'image.os'] }), [
      { os: 'Ubuntu', name: 'px-web', image: { os: 'Ubuntu' } },
    ]);
  });

  it('validates options like the QueryOptions model (extra="forbid")', () => {
    assert.throws(
      () => query(rows, [], { frobnicate: true }),
      (e: unknown) => {
        assert.ok(e instanceof ValidationErrors);
        assert.deepEqual(e.items, [['options.frobnicate', 'Extra inputs are not permitted', 22]]);
        return true;
      },
    );
    assert.throws(() => query(rows, [], { limit: -1 }), ValidationErrors);
    assert.throws(() => query(rows, [], { get: true, offset: 1 }), ValidationErrors);
    assert.throws(() => query(rows, 'nope', {}), ValidationErrors);
  });
});
