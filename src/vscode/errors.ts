// Failures are shown as the server's reason in one sentence, with a "Show Logs" button; details go to the log.
import * as vscode from 'vscode';
import { UntrustedCertificateError } from '../core/certificate';
import { CancelledError, PixelsError, userMessage } from '../core/errors';
import { CommandIds } from './commandIds';
import type { Log } from './log';
import { ProvisioningFailed } from '../workflows/provision';

export const TRUST_BUTTON = 'Trust New Certificate…';

let last: { action: string; message: string } | undefined;

/** The last failure reported (the extension-host tests read it through the exported API). */
export function lastReportedError(): { action: string; message: string } | undefined {
  return last;
}

/** Records and logs a failure in the words the user sees; a programming error's stack goes to the debug level. */
function record(log: Log, action: string, err: unknown): string {
  const message = userMessage(err);
  last = { action, message };
  log.error(`${action} failed: ${message}`);
  if (!(err instanceof PixelsError) && err instanceof Error && err.stack) log.debug(err.stack);
  return message;
}

/** Reports a failure with the caller's own buttons first (then "Show Logs"); resolves to the button chosen. */
export async function reportErrorAndAsk(
  log: Log,
  action: string,
  err: unknown,
  buttons: string[],
): Promise<string | undefined> {
  const message = record(log, action, err);
  const choice = await vscode.window.showErrorMessage(
    `${action} failed: ${message}`,
    ...buttons,
    'Show Logs',
  );
  if (choice === 'Show Logs') log.show();
  return choice;
}

export function reportError(log: Log, action: string, err: unknown): void {
  if (err instanceof CancelledError) {
    log.info(`${action}: cancelled`);
    return;
  }
  const message = record(log, action, err);
  // A failed provisioning run can be resumed where it stopped: offer it next to the logs.
  const retry =
    err instanceof ProvisioningFailed ? { server: err.serverId, name: err.sandboxName } : undefined;
  // A certificate that changed (or was never trusted) can be looked at and trusted, never silently.
  const trust = err instanceof UntrustedCertificateError ? { host: err.host } : undefined;
  const buttons = [...(trust ? [TRUST_BUTTON] : []), 'Show Logs', ...(retry ? ['Retry Provisioning'] : [])];
  void vscode.window.showErrorMessage(`${action} failed: ${message}`, ...buttons).then((choice) => {
    if (choice === 'Show Logs') log.show();
    if (choice === 'Retry Provisioning')
      void vscode.commands.executeCommand(CommandIds.provisionSandbox, retry);
    if (choice === TRUST_BUTTON) void vscode.commands.executeCommand(CommandIds.trustNewCertificate, trust);
  });
}
