// Long operations run in a progress notification that shows the job's own step description and percent, and
// can be cancelled when the server can cancel the job (otherwise cancelling would only hide work still running).
import * as vscode from 'vscode';
import type { OperationOptions } from '../core/sandbox';

export function withProgress<T>(
  title: string,
  cancellable: boolean,
  task: (op: OperationOptions, step: (message: string) => void) => Promise<T>,
  location: vscode.ProgressLocation = vscode.ProgressLocation.Notification,
): Promise<T> {
  return Promise.resolve(
    vscode.window.withProgress({ location, title, cancellable }, (progress, token) => {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      let done = 0;
      const op: OperationOptions = {
        signal: abort.signal,
        onProgress: (r) => {
          let increment: number | undefined;
          if (r.percent !== undefined && r.percent > done) {
            increment = Math.min(100, r.percent) - done;
            done = Math.min(100, r.percent);
          }
          progress.report({ message: r.description, increment });
        },
      };
      return task(op, (message) => progress.report({ message })).finally(() => sub.dispose());
    }),
  );
}
