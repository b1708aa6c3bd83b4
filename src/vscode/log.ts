// The one "Pixels" log channel. Every line goes through redact() so API keys and private keys never reach it.
import * as vscode from 'vscode';
import { redact, type Logger } from '../core/log';

export class Log implements Logger, vscode.Disposable {
  private readonly channel: vscode.LogOutputChannel;

  constructor() {
    this.channel = vscode.window.createOutputChannel('Pixels', { log: true });
  }

  trace(message: string): void {
    this.channel.trace(redact(message));
  }
  debug(message: string): void {
    this.channel.debug(redact(message));
  }
  info(message: string): void {
    this.channel.info(redact(message));
  }
  warn(message: string): void {
    this.channel.warn(redact(message));
  }
  error(message: string): void {
    this.channel.error(redact(message));
  }

  /** Raw output (command output streamed from a sandbox), still redacted. */
  append(text: string): void {
    this.channel.append(redact(text));
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
