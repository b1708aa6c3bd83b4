// Entry point. Builds the services and registers views and commands; nothing else lives here.
import type * as vscode from 'vscode';

export function activate(_context: vscode.ExtensionContext): void {
  // Filled by the editor layer (src/vscode).
}

export function deactivate(): void {}
