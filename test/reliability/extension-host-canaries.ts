// The outside half of the extension-host secret canaries (test/vscode/workers/secrets.test.ts puts them in): samples
// every process's arguments on this machine while the windows run, then looks for each canary in the settings
// (user + workspace), the extension host's logs (the Pixels output channel's log file, code-server's and the
// workbench's logs), the SSH files the extension wrote, the error messages it showed, and whatever is new in the
// temp folder. Returns the places checked and the leaks found ("<canary> in <place>: …context…").
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CanaryReport {
  canaries: Record<string, string>;
  inputs: string;
  outputs: string;
}

export class CanaryWatch {
  private readonly cmdlines = new Map<string, string>();
  private readonly sampler: NodeJS.Timeout;
  private readonly tmpBefore = new Set(readdirSync(tmpdir()));
  readonly places: string[] = [];
  readonly leaks: string[] = [];

  constructor() {
    this.sampler = setInterval(() => this.sample(), 25);
  }

  /** Every process's argv, as `ps` would show them (sampled every 25 ms). */
  private sample(): void {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        if (args) this.cmdlines.set(`${pid} ${args.slice(0, 60)}`, args);
      } catch {
        // ended meanwhile
      }
    }
  }

  stop(): void {
    clearInterval(this.sampler);
  }

  /** Temp entries that appeared since the watch started. */
  newTempEntries(): string[] {
    return readdirSync(tmpdir())
      .filter((e) => !this.tmpBefore.has(e))
      .map((e) => join(tmpdir(), e));
  }

  check(canaries: Record<string, string>, place: string, text: string): void {
    this.places.push(place);
    for (const [name, canary] of Object.entries(canaries)) {
      const at = text.indexOf(canary);
      if (at !== -1)
        this.leaks.push(
          `${name} in ${place}: …${text.slice(Math.max(0, at - 60), at + canary.length + 20)}…`,
        );
    }
  }

  checkFiles(canaries: Record<string, string>, what: string, path: string, skip: string[] = []): void {
    if (!existsSync(path) || skip.some((s) => path.startsWith(s))) return;
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const entry of readdirSync(path)) this.checkFiles(canaries, what, join(path, entry), skip);
    } else if (st.isFile() && st.size < 64 * 1024 * 1024) {
      this.check(canaries, `${what} ${path}`, readFileSync(path).toString('latin1'));
    }
  }

  checkProcesses(canaries: Record<string, string>): void {
    this.sample();
    this.check(
      canaries,
      `the arguments of ${this.cmdlines.size} processes`,
      [...this.cmdlines.values()].join('\n'),
    );
  }
}
