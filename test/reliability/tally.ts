// Figures of the reliability suite: each part adds its cases here and prints one result line at the end.

/** What one injected fault left behind, compared with what the product reported. */
export interface FaultCase {
  where: string;
  /** the fault really happened (its switch was consumed, the proxy acted) */
  injected: boolean;
  lost: string[];
  duplicated: string[];
  halfMade: string[];
}

export class FaultTally {
  readonly cases: FaultCase[] = [];

  add(c: FaultCase): void {
    this.cases.push(c);
  }

  get injected(): number {
    return this.cases.filter((c) => c.injected).length;
  }

  count(kind: 'lost' | 'duplicated' | 'halfMade'): number {
    return this.cases.reduce((n, c) => n + c[kind].length, 0);
  }

  line(): string {
    return `faults: ${this.injected} injected, ${this.count('lost')} lost, ${this.count('duplicated')} duplicated, ${this.count('halfMade')} half-made`;
  }

  /** Every case that went wrong, one line each, for the assertion message. */
  problems(): string[] {
    return this.cases.flatMap((c) => [
      ...(c.injected ? [] : [`${c.where}: the fault was never injected`]),
      ...c.lost.map((x) => `${c.where}: lost ${x}`),
      ...c.duplicated.map((x) => `${c.where}: duplicated ${x}`),
      ...c.halfMade.map((x) => `${c.where}: half-made ${x}`),
    ]);
  }
}

/** Runs `work` and says whether it finished within `ms` (a hang is reported, never waited out). */
export async function bounded<T>(
  ms: number,
  work: () => Promise<T>,
): Promise<{ done: true; value?: T; error?: unknown } | { done: false }> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<{ done: false }>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), ms);
  });
  try {
    return await Promise.race([
      work().then(
        (value) => ({ done: true as const, value }),
        (error: unknown) => ({ done: true as const, error }),
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
