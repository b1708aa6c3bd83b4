// The egress tracker's warnings as the editor shows them: "Show Logs", or "Set Up SSH Access…" when setting up
// SSH access is what makes the sandbox's policy checkable.
import * as vscode from 'vscode';
import type { EgressNotice } from '../workflows/egressTracker';
import { CommandIds } from './commandIds';
import type { Log } from './log';

export function showEgressNotice(log: Log): (notice: EgressNotice) => void {
  return (notice) => {
    const target = notice.setupSsh;
    if (target) {
      void vscode.window.showInformationMessage(notice.message, 'Set Up SSH Access…').then((choice) => {
        if (choice)
          void vscode.commands.executeCommand(CommandIds.setupSsh, {
            server: target.serverId,
            name: target.name,
          });
      });
      return;
    }
    void vscode.window.showWarningMessage(notice.message, 'Show Logs').then((choice) => {
      if (choice === 'Show Logs') log.show();
    });
  };
}
