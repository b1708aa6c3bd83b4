// "Open Terminal": a VS Code terminal backed by an ssh2 shell on the pooled connection. Resizes follow the
// panel, the exit code is shown, and the terminal closes on the next key press after the shell ended.
import * as vscode from 'vscode';
import { userMessage } from '../core/errors';
import type { ShellSession, SshPool, SshTarget } from '../ssh/index';
import type { Log } from './log';

export class SandboxTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;
  private session: ShellSession | undefined;
  private exitCode: number | undefined;
  private closed = false;

  constructor(
    private readonly pool: SshPool,
    private readonly target: SshTarget,
    private readonly log: Log,
    /** Run instead of the account's shell (the login shell with the session variables); default: the shell. */
    private readonly command?: string,
  ) {}

  open(dimensions: vscode.TerminalDimensions | undefined): void {
    const cols = dimensions?.columns || 80;
    const rows = dimensions?.rows || 24;
    this.pool.shell(this.target, { cols, rows, command: this.command }).then(
      (session) => {
        if (this.closed) return session.close();
        this.session = session;
        session.onData((chunk) => this.writeEmitter.fire(chunk.toString('utf8')));
        session.onExit((exit) => {
          this.exitCode = exit.exitCode ?? 1;
          const how = exit.lost
            ? 'connection lost'
            : exit.signal
              ? `killed by ${exit.signal}`
              : `exit code ${exit.exitCode}`;
          this.log.info(`terminal ${this.target.label}: ${how}`);
          this.writeEmitter.fire(`\r\n\x1b[2m[${how} — press any key to close]\x1b[0m\r\n`);
        });
      },
      (err) => {
        this.exitCode = 1;
        this.log.error(`terminal ${this.target.label}: ${userMessage(err)}`);
        this.writeEmitter.fire(
          `\x1b[31m${userMessage(err)}\x1b[0m\r\n\x1b[2m[press any key to close]\x1b[0m\r\n`,
        );
      },
    );
  }

  handleInput(data: string): void {
    if (this.exitCode !== undefined) {
      this.closed = true;
      this.closeEmitter.fire(this.exitCode);
      return;
    }
    this.session?.write(data);
  }

  setDimensions(dimensions: vscode.TerminalDimensions): void {
    this.session?.resize(dimensions.columns, dimensions.rows);
  }

  close(): void {
    this.closed = true;
    this.session?.close();
  }
}
