// The TrueNAS simulator in its own process (test/sim/main.ts, forked on loopback), for benchmarks that time what a
// user sees: a NAS is another machine, so its work and its garbage must not land in the client's timings. The child
// answers call-count and gc requests over the IPC channel and is stopped by its pid, with a bounded wait.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const READY = /^truenas-sim listening on (\S+)$/m;

export interface SimProcessOptions {
  version: string;
  apiKey: string;
  seedScale: { sandboxes: number; checkpoints: number; others: number };
  tls: { certFile: string; keyFile: string };
  /** how long seeding may take before the start counts as failed */
  startTimeoutMs: number;
}

export class SimProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly port: number,
  ) {}

  static async start(o: SimProcessOptions): Promise<SimProcess> {
    const child = fork(
      join(__dirname, '..', '..', 'test', 'sim', 'main.ts'),
      [
        '--port=0',
        `--version=${o.version}`,
        `--api-key=${o.apiKey}`,
        `--seed-scale=${o.seedScale.sandboxes},${o.seedScale.checkpoints},${o.seedScale.others}`,
        `--tls-cert=${o.tls.certFile}`,
        `--tls-key=${o.tls.keyFile}`,
      ],
      { execArgv: ['--expose-gc', '--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    let out = '';
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the simulator did not start within ${o.startTimeoutMs} ms`)),
          o.startTimeoutMs,
        );
        child.stdout?.on('data', (d: Buffer) => {
          out += d.toString();
          const m = READY.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`the simulator exited with ${code}: ${err.trim()}`));
        });
      });
      return new SimProcess(child, url, Number(new URL(url).port));
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  private request<T>(type: string, pick: (m: { type?: string; count?: number }) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { type?: string; count?: number }) => {
        if (m?.type !== type) return;
        this.child.off('message', onMessage);
        resolve(pick(m));
      };
      this.child.on('message', onMessage);
      this.child.send({ type }, (e) => e && reject(e));
    });
  }

  /** API calls the simulator has served so far. */
  callCount(): Promise<number> {
    return this.request('call-count', (m) => m.count ?? NaN);
  }

  /** A full collection in the simulator's process. */
  gc(): Promise<void> {
    return this.request('gc', () => undefined);
  }

  /** SIGTERM by pid, then SIGKILL if it has not exited within the bound. */
  async stop(boundMs = 5000): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
    await exited;
    clearTimeout(timer);
  }
}
