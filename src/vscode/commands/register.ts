// Registers a command whose failures are reported once (server's reason + "Show Logs") instead of thrown,
// so VS Code does not add its own generic error on top. The handler's result is the command's result.
import * as vscode from 'vscode';
import type { CommandId } from '../commandIds';
import { reportError } from '../errors';
import type { Services } from '../services';

export function registerCommand(
  services: Services,
  id: CommandId,
  action: string,
  handler: (arg: unknown, ...rest: unknown[]) => Promise<unknown> | unknown,
): void {
  services.context.subscriptions.push(
    vscode.commands.registerCommand(id, async (arg: unknown, ...rest: unknown[]) => {
      try {
        return await handler(arg, ...rest);
      } catch (err) {
        reportError(services.log, action, err);
        return undefined;
      }
    }),
  );
}
