// Fault switches (contract A). Each one is consumed by the protocol layer at the point where the real failure
// would happen; reset() turns everything off.

export interface FaultSwitches {
  /**
   * the next job (matching method, if given) runs on, but its socket is closed mid-job; a plain call named
   * explicitly runs, and its socket is closed before the reply
   */
  dropSocketMidJob(method?: string): void;
  /** every reply (to `method`, if given) delayed by ms (0 = off) */
  delayReplies(ms: number, method?: string): void;
  /** the next job ends FAILED with a CallError */
  failNextJob(reason?: string): void;
  /** the next call of `method` (a job or not) fails with a CallError before it changes anything */
  failNextCall(method: string, reason?: string): void;
  /** whether a one-shot switch is still waiting for its call (so a test knows its fault really happened) */
  armed(): boolean;
  /** the next call on an authenticated socket gets ENOTAUTHENTICATED (the session is gone) */
  expireSession(): void;
  /** the next `count` calls (of `method`, if given) answer -32000 */
  tooManyCalls(count: number, method?: string): void;
  /**
   * the next job (matching method, if given) starts, then middlewared restarts mid-job (down for downMs); a plain
   * call named explicitly runs, and middlewared restarts before the reply
   */
  restartMidJob(method?: string, downMs?: number): void;
  /**
   * Every reply to `method` (until reset) is the frame `rewrite` makes of the real one (its JSON text): garbage
   * for fuzzing, sent as a text frame even when it is not valid UTF-8.
   */
  rewriteReplies(method: string, rewrite: (frame: string) => string | Buffer): void;
  /**
   * The guest of instance `name` ignores a clean shutdown request (until reset): a 26 `container.stop` without
   * `force` waits its `shutdown_timeout` and, without `force_after_timeout`, succeeds with it still RUNNING.
   */
  ignoreShutdown(name: string): void;
  reset(): void;
}

export class Faults implements FaultSwitches {
  private drop: { method: string | undefined } | null = null;
  private delayMs = 0;
  private delayMethod: string | undefined;
  private tooManyMethod: string | undefined;
  private failReason: string | null = null;
  private expire = false;
  private tooMany = 0;
  private failCall: { method: string; reason: string } | null = null;
  private restart: { method: string | undefined; downMs: number } | null = null;
  private readonly rewrites = new Map<string, (frame: string) => string | Buffer>();
  private readonly stubborn = new Set<string>();

  ignoreShutdown(name: string): void {
    this.stubborn.add(name);
  }
  /** whether the guest of `name` ignores a clean shutdown */
  ignoresShutdown(name: string): boolean {
    return this.stubborn.has(name);
  }

  dropSocketMidJob(method?: string): void {
    this.drop = { method };
  }
  delayReplies(ms: number, method?: string): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('delayReplies: ms must be >= 0');
    this.delayMs = ms;
    this.delayMethod = method;
  }
  failNextJob(reason?: string): void {
    this.failReason = reason ?? 'Injected failure (simulator fault: failNextJob)';
  }
  expireSession(): void {
    this.expire = true;
  }
  tooManyCalls(count: number, method?: string): void {
    if (!Number.isInteger(count) || count < 0)
      throw new RangeError('tooManyCalls: count must be an integer >= 0');
    this.tooMany = count;
    this.tooManyMethod = method;
  }
  restartMidJob(method?: string, downMs = 300): void {
    if (!Number.isFinite(downMs) || downMs < 0) throw new RangeError('restartMidJob: downMs must be >= 0');
    this.restart = { method, downMs };
  }
  rewriteReplies(method: string, rewrite: (frame: string) => string | Buffer): void {
    this.rewrites.set(method, rewrite);
  }
  failNextCall(method: string, reason?: string): void {
    this.failCall = {
      method,
      reason: reason ?? `Injected failure of ${method} (simulator fault: failNextCall)`,
    };
  }
  armed(): boolean {
    return Boolean(
      this.drop ||
      this.failReason !== null ||
      this.expire ||
      this.tooMany > 0 ||
      this.restart ||
      this.failCall,
    );
  }
  reset(): void {
    this.failCall = null;
    this.restart = null;
    this.rewrites.clear();
    this.drop = null;
    this.delayMs = 0;
    this.delayMethod = undefined;
    this.tooManyMethod = undefined;
    this.failReason = null;
    this.expire = false;
    this.tooMany = 0;
    this.stubborn.clear();
  }

  // ---- consumed by the protocol layer ----
  replyDelayMs(method: string): number {
    return this.delayMethod === undefined || this.delayMethod === method ? this.delayMs : 0;
  }
  /** `named`: only when the switch names this method (plain calls) */
  takeDrop(method: string, named = false): boolean {
    if (!this.drop || (this.drop.method === undefined ? named : this.drop.method !== method)) return false;
    this.drop = null;
    return true;
  }
  /** how long the server stays down, when this job is the one to restart it */
  takeRestart(method: string, named = false): number | null {
    if (!this.restart || (this.restart.method === undefined ? named : this.restart.method !== method))
      return null;
    const { downMs } = this.restart;
    this.restart = null;
    return downMs;
  }
  rewriterFor(method: string): ((frame: string) => string | Buffer) | undefined {
    return this.rewrites.get(method);
  }
  takeCallFailure(method: string): string | null {
    if (this.failCall?.method !== method) return null;
    const { reason } = this.failCall;
    this.failCall = null;
    return reason;
  }
  takeFailure(): string | null {
    const reason = this.failReason;
    this.failReason = null;
    return reason;
  }
  takeExpire(): boolean {
    const expire = this.expire;
    this.expire = false;
    return expire;
  }
  takeTooMany(method: string): boolean {
    if (this.tooMany <= 0 || (this.tooManyMethod !== undefined && this.tooManyMethod !== method))
      return false;
    this.tooMany -= 1;
    return true;
  }
}
