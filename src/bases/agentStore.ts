// Which sandboxes were made by agents (and so fall under the lifecycle policy), when, and when an agent last did
// something in them. Kept in a JSON file of this machine, like pixels' MCP state file: it works on every backend
// (a TrueNAS instance has no free-form keys to carry a mark). A corrupt file is set aside, not trusted.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from './lifecycle';

export interface AgentSandboxRecord {
  name: string;
  /** ms since the epoch. */
  createdAt: number;
  lastActivityAt: number;
  /** The base it was created from. */
  base?: string;
  /** 'agent': made through the agent tools; 'person': a person put it under the policy on purpose. */
  by: 'agent' | 'person';
}

interface FileShape {
  version: 1;
  servers: Record<string, AgentSandboxRecord[]>;
}

export class AgentSandboxStore {
  private data: FileShape = { version: 1, servers: {} };
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string | undefined,
    private readonly clock: Clock,
  ) {}

  /** Loads `file` (missing: empty); without a file the store lives in memory only (tests, bench). */
  static async open(
    file: string | undefined,
    clock: Clock,
    warn: (m: string) => void = () => undefined,
  ): Promise<AgentSandboxStore> {
    const store = new AgentSandboxStore(file, clock);
    if (!file) return store;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store;
      throw err;
    }
    const parsed = parseShape(text);
    if (parsed) store.data = parsed;
    else {
      const aside = `${file}.corrupt-${clock.now()}`;
      await rename(file, aside).catch(() => undefined);
      warn(`the agent sandbox list ${file} could not be read; it was moved to ${aside} and starts empty`);
    }
    return store;
  }

  list(serverId: string): AgentSandboxRecord[] {
    return (this.data.servers[serverId] ?? []).map((r) => ({ ...r }));
  }

  get(serverId: string, name: string): AgentSandboxRecord | undefined {
    const r = this.data.servers[serverId]?.find((x) => x.name === name);
    return r ? { ...r } : undefined;
  }

  /** Puts the sandbox under the policy, its age counted from now. */
  async mark(
    serverId: string,
    name: string,
    how: { by: AgentSandboxRecord['by']; base?: string },
  ): Promise<AgentSandboxRecord> {
    const now = this.clock.now();
    const record: AgentSandboxRecord = { name, createdAt: now, lastActivityAt: now, by: how.by };
    if (how.base) record.base = how.base;
    const list = (this.data.servers[serverId] ??= []).filter((r) => r.name !== name);
    list.push(record);
    this.data.servers[serverId] = list;
    await this.save();
    return { ...record };
  }

  /** Something happened in it (a tool call): the idle time starts anew. */
  async touch(serverId: string, name: string): Promise<AgentSandboxRecord | undefined> {
    const r = this.data.servers[serverId]?.find((x) => x.name === name);
    if (!r) return undefined;
    r.lastActivityAt = this.clock.now();
    await this.save();
    return { ...r };
  }

  async forget(serverId: string, name: string): Promise<void> {
    const list = this.data.servers[serverId];
    if (!list?.some((r) => r.name === name)) return;
    this.data.servers[serverId] = list.filter((r) => r.name !== name);
    if (!this.data.servers[serverId].length) delete this.data.servers[serverId];
    await this.save();
  }

  /** Writes are queued so that two quick changes never interleave; the file is replaced atomically. */
  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const text = JSON.stringify(this.data, null, 2);
    this.writing = this.writing
      .catch(() => undefined)
      .then(async () => {
        await mkdir(dirname(file), { recursive: true });
        const tmp = `${file}.tmp-${process.pid}`;
        await writeFile(tmp, text, { mode: 0o600 });
        await rename(tmp, file);
      });
    return this.writing;
  }
}

function parseShape(text: string): FileShape | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as { version?: unknown; servers?: unknown };
  if (o.version !== 1 || typeof o.servers !== 'object' || o.servers === null) return undefined;
  const servers: FileShape['servers'] = {};
  for (const [id, list] of Object.entries(o.servers as Record<string, unknown>)) {
    if (!Array.isArray(list)) return undefined;
    const out: AgentSandboxRecord[] = [];
    for (const r of list as unknown[]) {
      const x = r as Partial<AgentSandboxRecord>;
      if (
        typeof x?.name !== 'string' ||
        typeof x.createdAt !== 'number' ||
        typeof x.lastActivityAt !== 'number' ||
        (x.by !== 'agent' && x.by !== 'person') ||
        (x.base !== undefined && typeof x.base !== 'string')
      )
        return undefined;
      out.push({ ...x } as AgentSandboxRecord);
    }
    servers[id] = out;
  }
  return { version: 1, servers };
}
