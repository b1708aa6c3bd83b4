// What the tree shows, per server: the last sandbox list (with checkpoints) or the reason it could not be loaded.
// Loads are coalesced: while one is in flight for a server, more requests wait for it and at most one more runs.
// Until a server first answers, its list from the local cache (last session's) is shown, marked stale; its first
// answer (a list or an error) replaces it for good, and every new list is written back to the cache. A server
// removed and added again starts over: its last known list shows until it answers again.
import type { Checkpoint, Sandbox } from '../core/sandbox';
import type { SandboxCacheFile } from '../core/sandboxCache';
import { Emitter } from '../core/disposable';
import { userMessage } from '../core/errors';
import type { Log } from './log';
import type { ServerRegistry } from './servers';

export type ServerLoadState =
  | { status: 'idle' }
  | { status: 'loading'; previous?: Sandbox[] }
  | { status: 'ok'; sandboxes: Sandbox[]; loadedAt: number }
  | { status: 'error'; error: unknown; message: string; loadedAt: number };

export class SandboxStore {
  private readonly states = new Map<string, ServerLoadState>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, Promise<void>>();
  private readonly changed = new Emitter<string | undefined>();
  /** Servers that answered (a list or an error) since they were configured: their cached list is not shown. */
  private readonly answered = new Set<string>();
  private cacheLoaded = false;
  private readonly cacheRead: Promise<void>;
  /** Fires with the server id whose data changed (undefined: all). */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly registry: ServerRegistry,
    private readonly log: Log,
    private readonly cache?: SandboxCacheFile,
  ) {
    this.cacheRead = (cache?.load() ?? Promise.resolve()).then(() => {
      this.cacheLoaded = true;
    });
  }

  /** Resolves once the local cache has been read (at once without one). */
  cacheReady(): Promise<void> {
    return this.cacheRead;
  }

  state(serverId: string): ServerLoadState {
    return this.states.get(serverId) ?? { status: 'idle' };
  }

  /** The server has not answered yet and what is shown of it comes from the cache. */
  isStale(serverId: string): boolean {
    return this.cachedList(serverId) !== undefined;
  }

  private cachedList(serverId: string): Sandbox[] | undefined {
    if (!this.cache || !this.cacheLoaded || this.answered.has(serverId)) return undefined;
    return this.cache.get(serverId)?.sandboxes;
  }

  /** There is something to show for the server without waiting: an answer, or its cached list. */
  canShowNow(serverId: string): boolean {
    const status = this.state(serverId).status;
    return status === 'ok' || status === 'error' || this.isStale(serverId);
  }

  sandboxes(serverId: string): Sandbox[] {
    const s = this.state(serverId);
    if (s.status === 'ok') return s.sandboxes;
    if (s.status === 'loading') return s.previous ?? [];
    if (s.status === 'idle') return this.cachedList(serverId) ?? [];
    return [];
  }

  /** The name the UI shows for a server (its label), for log lines. */
  private labelOf(serverId: string): string {
    return this.registry.servers().find((s) => s.id === serverId)?.label ?? serverId;
  }

  find(serverId: string, name: string): Sandbox | undefined {
    return this.sandboxes(serverId).find((s) => s.name === name);
  }

  /** Loads one server (or every server). Resolves when the data is fresh; never rejects. */
  load(serverId?: string): Promise<void> {
    if (serverId === undefined)
      return Promise.all(this.registry.servers().map((s) => this.load(s.id))).then(() => undefined);
    const running = this.inflight.get(serverId);
    if (running) {
      // One more load after the running one, shared by everyone asking meanwhile.
      let next = this.queued.get(serverId);
      if (!next) {
        next = running.then(() => {
          this.queued.delete(serverId);
          return this.load(serverId);
        });
        this.queued.set(serverId, next);
      }
      return next;
    }
    const promise = this.fetch(serverId).finally(() => this.inflight.delete(serverId));
    this.inflight.set(serverId, promise);
    return promise;
  }

  /** Loads servers that were never loaded; returns when they are. */
  async ensureLoaded(): Promise<void> {
    await Promise.all(
      this.registry
        .servers()
        .filter((s) => this.state(s.id).status === 'idle')
        .map((s) => this.load(s.id)),
    );
    await Promise.all(this.registry.servers().map((s) => this.inflight.get(s.id)));
  }

  private async fetch(serverId: string): Promise<void> {
    const previous = this.sandboxes(serverId);
    const before = this.signature(serverId);
    this.states.set(serverId, { status: 'loading', previous });
    const started = Date.now();
    try {
      const backend = await this.registry.backend(serverId);
      const list = await backend.list();
      const sandboxes = list
        .map((s) => ({ ...s, checkpoints: s.checkpoints ? sortCheckpoints(s.checkpoints) : undefined }))
        .sort((a, b) => a.name.localeCompare(b.name));
      this.answered.add(serverId);
      this.states.set(serverId, { status: 'ok', sandboxes, loadedAt: Date.now() });
      this.log.debug(
        `server "${this.labelOf(serverId)}": ${sandboxes.length} sandboxes in ${Date.now() - started} ms`,
      );
    } catch (error) {
      const message = userMessage(error);
      this.answered.add(serverId);
      this.states.set(serverId, { status: 'error', error, message, loadedAt: Date.now() });
      this.log.warn(`server "${this.labelOf(serverId)}": cannot list sandboxes: ${message}`);
    }
    // Unchanged data fires nothing: the tree is not rebuilt (no flicker, no lost menu targets) by a quiet poll.
    const now = this.signature(serverId);
    if (now === before) return;
    this.changed.fire(serverId);
    const state = this.state(serverId);
    if (state.status === 'ok' && this.cache)
      void this.cache.save(
        serverId,
        state.sandboxes,
        this.registry.servers().map((s) => s.id),
      );
  }

  /** What the tree shows for a server, as a string, to tell whether a reload changed anything. */
  private signature(serverId: string): string {
    const s = this.state(serverId);
    if (s.status === 'ok') return JSON.stringify(s.sandboxes);
    if (s.status === 'error') return `error:${s.message}`;
    return this.isStale(serverId) ? 'cached' : s.status;
  }

  /** Drops the data of servers that are gone. */
  prune(): void {
    const ids = new Set(this.registry.servers().map((s) => s.id));
    for (const id of [...this.states.keys()]) if (!ids.has(id)) this.states.delete(id);
    for (const id of [...this.answered]) if (!ids.has(id)) this.answered.delete(id);
    this.changed.fire(undefined);
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export function sortCheckpoints(checkpoints: Checkpoint[]): Checkpoint[] {
  return [...checkpoints].sort(
    (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.label.localeCompare(a.label),
  );
}
