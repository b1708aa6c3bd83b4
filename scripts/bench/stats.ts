// Small helpers shared by the benchmarks: order statistics and the one-line result format that `npm run bench`
// collects (`<figure>: <value>`). Timings are only ever compared with other timings of the same run.

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Spread of a sample, to say how noisy the machine was: (max - min) / median. */
export function spread(values: number[]): number {
  return (Math.max(...values) - Math.min(...values)) / median(values);
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

/** Prints a figure line; `npm run bench` keeps these (and only these) for its summary. */
export function figure(name: string, value: string): void {
  console.log(`${name}: ${value}`);
}

/** Runs a benchmark's main(), printing a failure as one line and exiting 1. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
