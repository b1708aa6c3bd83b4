// The shapes of the Incus replies the backend reads (checked by the REST client before anything maps them).
import type { ReplyCheck } from '../../core/reply-shape';
import { objectWith, rowsWith } from '../../core/reply-shape';

export const SERVER_REPLY = objectWith({ auth: 'string?', environment: 'object?', api_version: 'string?' });

export const SNAPSHOT_REPLY = objectWith({
  name: 'string',
  architecture: 'string?',
  created_at: 'string',
  size: 'number?',
  config: 'object?',
  devices: 'object?',
  profiles: 'array?',
});
export const SNAPSHOT_ROWS = rowsWith({ name: 'string', created_at: 'string', size: 'number?' });

const INSTANCE_FIELDS = objectWith({
  name: 'string',
  architecture: 'string?',
  status: 'string',
  location: 'string?',
  config: 'object?',
  devices: 'object?',
  profiles: 'array?',
  state: 'object?',
  snapshots: 'array?',
});

/** An instance (recursion=1 or 2): its own fields and those of the snapshots that come with it. */
export const INSTANCE_REPLY: ReplyCheck = (value) => {
  const problem = INSTANCE_FIELDS(value);
  if (problem) return problem;
  const snaps = (value as { snapshots?: unknown }).snapshots;
  if (Array.isArray(snaps)) {
    const bad = SNAPSHOT_ROWS(snaps);
    if (bad) return `its snapshots: ${bad}`;
  }
  return undefined;
};

export const INSTANCE_ROWS: ReplyCheck = (value) => {
  if (!Array.isArray(value)) return 'the reply is not a list';
  for (let i = 0; i < value.length; i++) {
    const problem = INSTANCE_REPLY(value[i]);
    if (problem) return `row ${i + 1}: ${problem}`;
  }
  return undefined;
};

export const OPERATION_REPLY = objectWith({
  id: 'string?',
  status: 'string',
  status_code: 'number',
  err: 'string?',
});

export const ALIAS_REPLY = objectWith({ target: 'string' });
export const IMAGE_REPLY = objectWith({ fingerprint: 'string' });
