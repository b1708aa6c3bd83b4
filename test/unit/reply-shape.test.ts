// What Pixels says about a server reply it cannot read (src/core/reply-shape.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_FIELD_TEXT, objectWith, rowsWith, text } from '../../src/core/reply-shape';

describe('reply shapes', () => {
  const rows = rowsWith({ name: 'string', size: 'number?', tags: 'array?', on: 'boolean?', meta: 'object?' });

  it('accepts rows with the fields (optional ones missing or null) and names the first bad row and field', () => {
    assert.equal(rows([{ name: 'a' }, { name: 'b', size: 1, tags: [], on: false, meta: null }]), undefined);
    assert.equal(rows([]), undefined);
    assert.equal(rows([{ name: 'a' }, { size: 2 }]), 'row 2 field "name" is missing');
    assert.equal(rows([{ name: 'a', size: 'big' }]), 'row 1 field "size" is text instead of a number');
    assert.equal(rows([{ name: 'a', size: Infinity }]), 'row 1 field "size" is a number instead of a number');
    assert.equal(rows([{ name: 'a', tags: {} }]), 'row 1 field "tags" is an object instead of a list');
    assert.equal(rows([{ name: 'a', on: 'yes' }]), 'row 1 field "on" is text instead of true/false');
    assert.equal(rows([{ name: 'a', meta: [] }]), 'row 1 field "meta" is a list instead of an object');
    assert.equal(rows([{ name: 'a' }, null]), 'row 2 is null, not an object');
    assert.equal(rows({ name: 'a' }), 'the reply is an object, not a list');
    assert.equal(
      rows([{ name: 'x'.repeat(MAX_FIELD_TEXT + 1) }]),
      `row 1 field "name" is ${MAX_FIELD_TEXT + 1} characters long`,
    );
  });

  it('checks one object and plain text the same way', () => {
    const one = objectWith({ id: 'number' });
    assert.equal(one({ id: 1 }), undefined);
    assert.equal(one({ id: '1' }), 'the reply field "id" is text instead of a number');
    assert.equal(one([]), 'the reply is a list, not an object');
    assert.equal(text('25.10'), undefined);
    assert.equal(text(null), 'the reply is empty');
    assert.equal(text(7), 'the reply is a number instead of text');
  });
});
