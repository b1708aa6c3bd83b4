// An interactive shell with a pty on a pooled connection: the VS Code Pseudoterminal only forwards keystrokes,
// resizes and output, and shows the exit code.
import type { ClientChannel } from 'ssh2';
import { Emitter, type Disposable, type Listener } from '../core/disposable';
import { exitFromClose } from './exec';

export interface ShellOptions {
  cols: number;
  rows: number;
  /** Default `xterm-256color`. */
  term?: string;
  /** Run this command line on the pty instead of the account's default shell (e.g. `env K=V … bash -l`). */
  command?: string;
}

export interface ShellExit {
  /** Exit status, or null when killed by a signal or when the connection was lost. */
  exitCode: number | null;
  signal?: string;
  /** True when the channel closed without an exit status (connection lost or closed by us). */
  lost: boolean;
}

export class ShellSession implements Disposable {
  private readonly dataEmitter = new Emitter<Buffer>();
  private readonly exitEmitter = new Emitter<ShellExit>();
  /** Output that arrived before anyone listened (the prompt), handed to the first listener. */
  private pending: Buffer[] | undefined = [];
  private ended: ShellExit | undefined;
  /** Resolves once the shell is gone. */
  readonly exited: Promise<ShellExit>;

  constructor(
    private readonly channel: ClientChannel,
    onClosed: () => void,
  ) {
    const onData = (chunk: Buffer) => {
      if (this.pending) this.pending.push(chunk);
      else this.dataEmitter.fire(chunk);
    };
    channel.on('data', onData);
    channel.stderr.on('data', onData);
    // Built inside ssh2's shell callback (see SshPool.shell), so no event can pass before these listeners.
    // The status comes as 'exit' and again as the arguments of 'close'.
    let status: ReturnType<typeof exitFromClose>;
    channel.on('exit', (code?: number | null, signal?: string) => {
      status ??= exitFromClose(code, signal);
    });
    this.exited = new Promise((resolve) => {
      channel.on('close', (code?: number | null, signal?: string) => {
        const info = (status ??= exitFromClose(code, signal));
        this.ended = {
          exitCode: info?.code ?? null,
          ...(info?.signal ? { signal: info.signal } : {}),
          lost: info === undefined,
        };
        onClosed();
        this.exitEmitter.fire(this.ended);
        resolve(this.ended);
      });
    });
  }

  /** Output from the shell (stdout and stderr; a pty merges them anyway). */
  onData(listener: Listener<Buffer>): Disposable {
    const subscription = this.dataEmitter.event(listener);
    if (this.pending) {
      const early = this.pending;
      this.pending = undefined;
      for (const chunk of early) listener(chunk);
    }
    return subscription;
  }

  onExit(listener: Listener<ShellExit>): Disposable {
    if (this.ended) {
      const ended = this.ended;
      queueMicrotask(() => listener(ended));
      return { dispose: () => {} };
    }
    return this.exitEmitter.event(listener);
  }

  write(data: string | Buffer): void {
    if (!this.ended) this.channel.write(data);
  }

  resize(cols: number, rows: number): void {
    if (this.ended) return;
    if (!(cols > 0 && rows > 0)) return; // a hidden terminal reports 0x0; the pty keeps its last size
    this.channel.setWindow(Math.floor(rows), Math.floor(cols), 0, 0);
  }

  /** Ends the shell (sends EOF and closes the channel); `exited` resolves afterwards. */
  close(): void {
    if (this.ended) return;
    this.channel.end();
    this.channel.close();
  }

  dispose(): void {
    this.close();
    this.dataEmitter.dispose();
  }
}
