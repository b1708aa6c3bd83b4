// The scanner behind both secret-canary tests (secrets.test.ts: the vscode-free paths; concurrency.test.ts: two
// extension hosts). It samples every process on this machine while the commands run (arguments and environment;
// which processes run inside a sandbox container), and looks for each canary in text, files and folders (bytes read
// as Latin-1 and as UTF-16LE: Chromium keeps strings in either), in VS Code state databases row by row, and in
// whatever is new in the temp folder. Every place looked at is counted; every canary found is a leak
// ("<canary> in <place>: …context…") unless the place is one the canary may legitimately be in:
//   - `[env]` values inside a sandbox: the processes of a sandbox container on this machine (Incus runs them here;
//     cgroup lxc.payload.<instance>) get them by design (instance environment, /etc/environment, the `env K=V`
//     prefix of a session). Never on this machine's own processes, and never the API key or the private key.
//   - the API key in a VS Code state database (desktop: User/globalStorage/state.vscdb) only as the value of our
//     SecretStorage row, `secret://{"extensionId":"pixels-dev.pixels-vscode","key":"pixels.apiKey.<server>"}`
//     (VS Code encrypts it there with the OS keyring); in any other row it is a leak.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Canary name -> value. Names starting with "[env] value" may be inside a sandbox; see above. */
export type Canaries = Record<string, string>;

/** The file name of a VS Code state database (SQLite, table ItemTable(key, value)). */
const STATE_DB = /\.vscdb$/;
/** Our SecretStorage rows in a VS Code state database. */
const OUR_SECRET_ROW =
  /^secret:\/\/\{"extensionId":"pixels-dev\.pixels-vscode","key":"pixels\.apiKey\.[^"]+"\}$/;

interface ProcessSeen {
  pid: number;
  /** The executable's short name (/proc/<pid>/comm). */
  comm: string;
  argv: string;
  environ: string | undefined;
  /** The Incus instance this process runs inside, if any (cgroup lxc.payload.<name>). */
  sandbox: string | undefined;
}

export function allowedInSandbox(canaryName: string): boolean {
  return canaryName.startsWith('[env] value');
}

export class CanaryScanner {
  /** Every process seen, by pid + arguments (a pid reused, or a process that exec'd, is a new entry). */
  private readonly processes = new Map<string, ProcessSeen>();
  private sampler: NodeJS.Timeout | undefined;
  private readonly tmpBefore = new Set(readdirSync(tmpdir()));
  /** Processes whose environment could not be read (gone between the reads, or not ours to read). */
  unreadableEnvirons = 0;
  readonly places: string[] = [];
  readonly leaks: string[] = [];
  /** Canaries found where they may be ("<canary> in <place>"): shows those places were really read. */
  readonly expected: string[] = [];

  /** The canaries may be given later (the extension hosts make theirs): processes are sampled meanwhile. */
  constructor(public canaries: Canaries = {}) {}

  /** Samples every process every `intervalMs` until stop(). */
  start(intervalMs = 25): this {
    this.sampler ??= setInterval(() => this.sample(), intervalMs);
    return this;
  }

  stop(): void {
    clearInterval(this.sampler);
    this.sampler = undefined;
  }

  /** One sample: every process's argv (as `ps` shows them); environment and cgroup once per new process. */
  sample(): void {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let argv: string;
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
      } catch {
        continue; // ended meanwhile
      }
      if (!argv) continue; // a kernel thread
      const key = `${pid} ${argv}`;
      if (this.processes.has(key)) continue;
      const read = (what: string): string | undefined => {
        try {
          return readFileSync(`/proc/${pid}/${what}`, 'latin1');
        } catch {
          return undefined;
        }
      };
      const environ = read('environ')?.replace(/\0/g, '\n');
      if (environ === undefined) this.unreadableEnvirons++;
      this.processes.set(key, {
        pid: Number(pid),
        comm: read('comm')?.trim() ?? '?',
        argv,
        environ,
        sandbox: /lxc\.payload\.([^/\n]+)/.exec(read('cgroup') ?? '')?.[1],
      });
    }
  }

  /** How many distinct processes were seen (inside sandboxes included). */
  get processCount(): number {
    return this.processes.size;
  }

  /** Checks the arguments and the environment of every process seen, with the sandbox allowance. */
  checkProcesses(): void {
    this.sample();
    for (const p of this.processes.values()) {
      const who = `process ${p.pid} (${p.comm}${p.sandbox ? `, inside sandbox ${p.sandbox}` : ', this machine'})`;
      const allow = p.sandbox ? allowedInSandbox : () => false;
      this.check(`the arguments of ${who}`, p.argv, allow);
      if (p.environ !== undefined) this.check(`the environment of ${who}`, p.environ, allow);
    }
  }

  /**
   * Looks for every canary in `text` (one place, possibly read in several ways); `allow` names the canaries this
   * place may hold. A canary found is one leak, reported with the place and what was around it.
   */
  check(place: string, text: string | string[], allow: (canaryName: string) => boolean = () => false): void {
    this.places.push(place);
    for (const [name, canary] of Object.entries(this.canaries)) {
      for (const t of Array.isArray(text) ? text : [text]) {
        const at = t.indexOf(canary);
        if (at === -1) continue;
        if (allow(name)) {
          this.expected.push(`${name} in ${place}`);
          break;
        }
        this.leaks.push(`${name} in ${place}: …${t.slice(Math.max(0, at - 60), at + canary.length + 20)}…`);
        break;
      }
    }
  }

  /** A file's bytes as Latin-1 and as UTF-16LE (at both byte offsets); a state database row by row. */
  checkFile(what: string, path: string): void {
    if (STATE_DB.test(path)) return this.checkStateDb(what, path);
    const bytes = readFileSync(path);
    this.check(`${what} ${path}`, [
      bytes.toString('latin1'),
      bytes.toString('utf16le'),
      bytes.subarray(1).toString('utf16le'),
    ]);
  }

  /** Every file under `path` (or `path` itself), except those under `skip`. */
  checkFiles(what: string, path: string, skip: string[] = []): void {
    if (!existsSync(path) || skip.some((s) => path.startsWith(s))) return;
    try {
      const st = statSync(path);
      if (st.isDirectory()) {
        for (const entry of readdirSync(path)) this.checkFiles(what, join(path, entry), skip);
      } else if (st.isFile() && st.size < 64 * 1024 * 1024) {
        this.checkFile(what, path);
      }
    } catch (err) {
      // Removed while we read it (other runs share the temp folder): nothing left to leak.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /**
   * A VS Code state database, read with the sqlite3 CLI: each row is a place; the API key is allowed only as the
   * value of our SecretStorage row. The raw file is not scanned (our secret row's bytes are in it).
   */
  checkStateDb(what: string, path: string): void {
    const out = execFileSync('sqlite3', ['-readonly', '-json', path, 'SELECT key, value FROM ItemTable'], {
      encoding: 'latin1',
      maxBuffer: 256 * 1024 * 1024,
    });
    const rows = (out.trim() ? JSON.parse(out) : []) as { key: string; value: string | null }[];
    this.places.push(`${what} ${path} (${rows.length} rows)`);
    for (const row of rows) {
      const ours = OUR_SECRET_ROW.test(row.key);
      this.check(
        `${what} ${path}, row "${row.key.slice(0, 80)}"`,
        `${row.key}\n${row.value ?? ''}`,
        (name) => ours && name.startsWith('API key'),
      );
    }
  }

  /** Temp entries that appeared since the scanner was made. */
  newTempEntries(): string[] {
    return readdirSync(tmpdir())
      .filter((e) => !this.tmpBefore.has(e))
      .map((e) => join(tmpdir(), e));
  }
}
