// filter_list semantics of the simulator (filters.ts): operators, C prefix, OR, dotted names, options.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SimObject, SimValue } from '../sim/ejson.js';
import { MatchNotFound, ValidationErrors } from '../sim/errors.js';
import { query, snapshotQuery } from '../sim/filters.js';

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
    // A key missing from a dict makes the filter false, whatever the operator (filterop); a present null is null.
    assert.deepEqual(ids(query(rows, [['image.missing', '=', null]], {})), []);
    assert.deepEqual(ids(query(rows, [['image.missing', '!=', 'x']], {})), []);
    assert.deepEqual(ids(query(rows, [['memory', '=', null]], {})), [3]);
    // In a list a number picks an element and `*` tries each; past a value that is not a dict the rest is ignored.
    assert.deepEqual(ids(query(rows, [['tags.0', '=', 'b']], {})), [2]);
    assert.deepEqual(ids(query(rows, [['tags.*', '=', 'b']], {})), [1, 2]);
    assert.deepEqual(ids(query(rows, [['tags.5', '=', null]], {})), [1, 2, 3, 4]);
    assert.deepEqual(ids(query(rows, [['name.first', '=', 'px-web']], {})), [1]);
    assert.throws(
      () => query(rows, [['tags.x', '=', 'b']], {}),
      /x: must be array index or wildcard character/,
    );
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

  /** The ValidationErrors items a call throws. */
  function refusal(run: () => unknown): [string, string, number][] {
    try {
      run();
    } catch (e) {
      assert.ok(e instanceof ValidationErrors, String(e));
      return e.items as [string, string, number][];
    }
    assert.fail('expected a validation error');
  }

  it('refuses bad select entries and option combinations with the QueryOptions wording', () => {
    const tail =
      'A select as list may only contain two parameters: the name of the parameter being selected, and the ' +
      'name to which to assign it in resulting data.';
    assert.deepEqual(
      refusal(() => query(rows, [], { select: [['a', 'b', 'c']] })),
      [['options', `Value error, ['a', 'b', 'c']: ${tail}`, 22]],
    );
    assert.deepEqual(
      refusal(() => query(rows, [], { select: [['a', 5]] })),
      [['options', "Value error, ['a', 5]: second item must be a string.", 22]],
    );
    assert.deepEqual(
      refusal(() => query(rows, [], { select: ['name', 5] })),
      [
        ['options.select.1.str', 'Input should be a valid string', 22],
        ['options.select.1.list[any]', 'Input should be a valid list', 22],
      ],
    );
    const single = 'Value error, Invalid options combination. `get` implies a single result.';
    assert.deepEqual(
      refusal(() => query(rows, [], { get: true, offset: 1 })),
      [['options', single, 22]],
    );
    assert.deepEqual(
      refusal(() => query(rows, [], { get: true, limit: 2 })),
      [['options', single, 22]],
    );
    assert.deepEqual(
      refusal(() => query(rows, [], { limit: 10_001 })),
      [['options', 'Value error, Options limit must be between 1 and 10000', 22]],
    );
  });

  it('selects like filter_list do_select: nesting, aliases, names not found, values that are not dicts', () => {
    const first = (select: SimValue[]) => (query(rows, [['id', '=', 1]], { select }) as SimObject[])[0];
    // A name that does not exist is left out, silently; so is a part missing below a dict.
    assert.deepEqual(first(['name', 'nope', 'image.nope']), { name: 'px-web' });
    // An alias is one key, dots and all; a plain dotted name rebuilds the nesting.
    assert.deepEqual(first([['image.os', 'image.os'], 'image.os']), {
      'image.os': 'Ubuntu',
      image: { os: 'Ubuntu' },
    });
    // Below a value that is not a dict the rest of the name is ignored: the value itself is selected.
    assert.deepEqual(first(['name.first', 'memory.x.y']), { name: 'px-web', memory: 4096 });
    assert.deepEqual((query(rows, [['id', '=', 3]], { select: ['memory.x'] }) as SimObject[])[0], {
      memory: null,
    });
    // A list on the way is refused; a backslash keeps a dot inside a key.
    assert.throws(() => first(['tags.0']), /Selecting by list index is not supported/);
    const dotted: SimObject[] = [{ 'a.b': 1, a: { b: 2 } }];
    assert.deepEqual(query(dotted, [], { select: ['a\\.b'] }), [{ 'a.b': 1 }]);
    assert.deepEqual(query(dotted, [], { select: ['a.b'] }), [{ a: { b: 2 } }]);
    assert.throws(() => query(dotted, [], { select: ['.a'] }), /string index out of range/);
    // Selection comes before ordering: an order_by name that is not selected orders nothing.
    assert.deepEqual(query(rows, [], { select: ['id'], order_by: ['-memory'] }), [
      { id: 1 },
      { id: 2 },
      { id: 3 },
      { id: 4 },
    ]);
    assert.deepEqual(query(rows, [], { select: ['id', 'memory'], order_by: ['-memory'] }), [
      { id: 2, memory: 8192 },
      { id: 1, memory: 4096 },
      { id: 4, memory: 1024 },
      { id: 3, memory: null },
    ]);
  });

  it('selects top-level keys only in the snapshot queries (select popped, applied after filter_list)', () => {
    const snaps: SimObject[] = [
      {
        id: 'tank/a@1',
        name: 'tank/a@1',
        dataset: 'tank/a',
        snapshot_name: '1',
        properties: { used: { parsed: 5 }, creation: { parsed: new Date(1000) } },
      },
      { id: 'tank/b@2', name: 'tank/b@2', dataset: 'tank/b', snapshot_name: '2', properties: {} },
    ];
    assert.deepEqual(
      snapshotQuery(snaps, [['dataset', '=', 'tank/a']], { select: ['snapshot_name', 'id'] }),
      [{ id: 'tank/a@1', snapshot_name: '1' }],
    );
    // Dotted names, aliases and unknown names match no top-level key: the rows come back empty.
    assert.deepEqual(snapshotQuery(snaps, [], { select: ['properties.used', ['id', 'x'], 'nope'] }), [
      {},
      {},
    ]);
    assert.deepEqual(
      snapshotQuery(snaps, [['id', '=', 'tank/b@2']], { get: true, select: ['dataset', 'properties'] }),
      { dataset: 'tank/b', properties: {} },
    );
    assert.equal(snapshotQuery(snaps, [], { count: true, select: ['id'] }), 2);
    // The options are still validated as QueryOptions.
    assert.throws(() => snapshotQuery(snaps, [], { select: [['a']] }), ValidationErrors);
  });
});
