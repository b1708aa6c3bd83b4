// API keys live in SecretStorage (the OS keyring on desktop), one entry per server id. They are never written
// to settings or logs: every key read or stored is registered with redact().
import type * as vscode from 'vscode';
import { PixelsError } from '../core/errors';
import { registerSecret } from '../core/log';

export class KeyringUnavailableError extends PixelsError {
  constructor(cause: unknown) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    super(
      'security',
      `The OS keyring is unavailable, so Pixels cannot read or store API keys (${reason}). ` +
        'On Linux, install and unlock a Secret Service keyring (GNOME Keyring or KWallet), or start VS Code with --password-store=basic.',
      { cause },
    );
  }
}

const PREFIX = 'pixels.apiKey.';

export class ApiKeyStore {
  constructor(private readonly storage: vscode.SecretStorage) {}

  async get(serverId: string): Promise<string | undefined> {
    let value: string | undefined;
    try {
      value = await this.storage.get(PREFIX + serverId);
    } catch (err) {
      throw new KeyringUnavailableError(err);
    }
    if (value) registerSecret(value);
    return value || undefined;
  }

  async store(serverId: string, apiKey: string): Promise<void> {
    registerSecret(apiKey);
    try {
      await this.storage.store(PREFIX + serverId, apiKey);
    } catch (err) {
      throw new KeyringUnavailableError(err);
    }
  }

  async delete(serverId: string): Promise<void> {
    try {
      await this.storage.delete(PREFIX + serverId);
    } catch (err) {
      throw new KeyringUnavailableError(err);
    }
  }

  /** Fires with the server id whose key changed (added, replaced or deleted). */
  onDidChange(listener: (serverId: string) => void): vscode.Disposable {
    return this.storage.onDidChange((e) => {
      if (e.key.startsWith(PREFIX)) listener(e.key.slice(PREFIX.length));
    });
  }
}
