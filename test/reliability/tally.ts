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

/** Instances (name → status) and snapshots a fault case expects, or that the server has. */
export interface InstancesAndSnapshots {
  instances: Map<string, string>;
  snapshots: Set<string>;
}

/**
 * Compares the server's state after one case with what the model expects: an expected instance or snapshot
 * missing is lost; an unexpected one is half-made, unless the operation reported success and the snapshot belongs
 * to the instance it was asked about (`ownsSnapshot`), which is a duplicate of a retried request.
 */
export function judgeState(
  model: InstancesAndSnapshots,
  st: InstancesAndSnapshots,
  ok: boolean,
  ownsSnapshot: (snapshot: string) => boolean,
): Pick<FaultCase, 'lost' | 'duplicated' | 'halfMade'> {
  const lost: string[] = [];
  const duplicated: string[] = [];
  const halfMade: string[] = [];
  const reported = ok ? 'done' : 'failed';
  for (const [name, status] of model.instances) {
    const now = st.instances.get(name);
    if (now === undefined) lost.push(`instance ${name}`);
    else if (now !== status) halfMade.push(`instance ${name} is ${now}, expected ${status}`);
  }
  for (const name of st.instances.keys())
    if (!model.instances.has(name)) halfMade.push(`instance ${name} (reported ${reported})`);
  for (const s of model.snapshots) if (!st.snapshots.has(s)) lost.push(`snapshot ${s}`);
  for (const s of st.snapshots) {
    if (model.snapshots.has(s)) continue;
    if (ok && ownsSnapshot(s)) duplicated.push(`snapshot ${s}`);
    else halfMade.push(`snapshot ${s} (reported ${reported})`);
  }
  return { lost, duplicated, halfMade };
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
