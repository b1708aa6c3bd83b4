// Go's time.ParseDuration syntax ("1h", "90m", "1h30m", "2.5h", "0"), which the pixels TOML uses for
// `[mcp] idle_stop_after` and `hard_destroy_after`, as milliseconds.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds, or a sentence saying what is wrong (negative durations make no sense for a policy). */
export function parseGoDuration(text: string): number | { problem: string } {
  const s = text.trim();
  if (s === '0') return 0;
  if (s.startsWith('-')) return { problem: `"${text}" is negative; a duration must be 0 or more` };
  const body = s.startsWith('+') ? s.slice(1) : s;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = part.exec(body)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    matched = part.lastIndex;
  }
  if (body === '' || matched !== body.length)
    return { problem: `"${text}" is not a duration; write e.g. "30m", "1h", "1h30m" or "24h"` };
  return Math.round(total);
}

/** "12 min", "3 h", "2 d 4 h": a short, rounded-up remaining time for the tree. */
export function formatRemaining(ms: number): string {
  if (ms <= 0) return 'now';
  const min = Math.ceil(ms / 60_000);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) {
    const rest = min - h * 60;
    return rest && h < 10 ? `${h} h ${rest} min` : `${Math.round(min / 60)} h`;
  }
  const d = Math.floor(h / 24);
  const rh = h - d * 24;
  return rh ? `${d} d ${rh} h` : `${d} d`;
}
