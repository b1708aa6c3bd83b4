// Calls about one sandbox run one at a time (an exec does not race a restore of the same sandbox); calls about
// different sandboxes run in parallel.
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, settled);
    // Drop the entry once nothing else queued behind this call, so the map does not grow without bound.
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
    return next;
  }

  /** Runs `work` holding every key (sorted, so two multi-key calls cannot deadlock). */
  runAll<T>(keys: string[], work: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const nest = (i: number): Promise<T> =>
      i === sorted.length ? work() : this.run(sorted[i]!, () => nest(i + 1));
    return nest(0);
  }
}
