// Fault switches (contract A). Each one is consumed by the protocol layer at the point where the real failure
// would happen; reset() turns everything off.

export interface FaultSwitches {
  /** the next job (matching method, if given) runs on, but its socket is closed mid-job */
  dropSocketMidJob(method?: string): void;
  /** every reply delayed by ms (0 = off) */
  delayReplies(ms: number): void;
  /** the next job ends FAILED with a CallError */
  failNextJob(reason?: string): void;
  /** the next call on an authenticated socket gets ENOTAUTHENTICATED (the session is gone) */
  expireSession(): void;
  /** the next `count` calls answer -32000 */
  tooManyCalls(count: number): void;
  reset(): void;
}

export class Faults implements FaultSwitches {
  private drop: { method: string | undefined } | null = null;
  private delayMs = 0;
  private failReason: string | null = null;
  private expire = false;
  private tooMany = 0;

  dropSocketMidJob(method?: string): void {
    this.drop = { method };
  }
  delayReplies(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('delayReplies: ms must be >= 0');
    this.delayMs = ms;
  }
  failNextJob(reason?: string): void {
    this.failReason = reason ?? 'Injected failure (simulator fault: failNextJob)';
  }
  expireSession(): void {
    this.expire = true;
  }
  tooManyCalls(count: number): void {
    if (!Number.isInteger(count) || count < 0)
      throw new RangeError('tooManyCalls: count must be an integer >= 0');
    this.tooMany = count;
  }
  reset(): void {
    this.drop = null;
    this.delayMs = 0;
    this.failReason = null;
    this.expire = false;
    this.tooMany = 0;
  }

  // ---- consumed by the protocol layer ----
  get replyDelayMs(): number {
    return this.delayMs;
  }
  takeDrop(method: string): boolean {
    if (!this.drop || (this.drop.method !== undefined && this.drop.method !== method)) return false;
    this.drop = null;
    return true;
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
  takeTooMany(): boolean {
    if (this.tooMany <= 0) return false;
    this.tooMany -= 1;
    return true;
  }
}
