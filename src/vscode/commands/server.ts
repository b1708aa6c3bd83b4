// Servers and the view: Add Server…, Remove Server, Refresh, Filter…, Show Logs, importing API keys.
import * as vscode from 'vscode';
import { CancelledError, ValidationError } from '../../core/errors';
import { registerSecret } from '../../core/log';
import type { ServerConfig, ServerKind } from '../../core/config';
import { CommandIds } from '../commandIds';
import { loadIncus, loadTrueNAS } from '../lazy';
import { answersOf, resolveServer, type Answers } from '../pick';
import { isLoopbackHost } from '../servers';
import type { Services } from '../services';
import { registerCommand } from './register';

type NewServer = Omit<ServerConfig, 'source'>;

async function ask(options: vscode.InputBoxOptions): Promise<string> {
  const value = await vscode.window.showInputBox({ ignoreFocusOut: true, ...options });
  if (value === undefined) throw new CancelledError();
  return value.trim();
}

function uniqueId(services: Services, base: string): string {
  const slug =
    base
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[^a-z0-9]+|-+$/g, '') || 'server';
  const ids = new Set(services.registry.servers().map((s) => s.id));
  let id = slug;
  for (let i = 2; ids.has(id); i++) id = `${slug}-${i}`;
  return id;
}

/** The palette path: asks kind, address, user and key. */
async function promptServer(services: Services): Promise<{ server: NewServer; apiKey?: string }> {
  const kind = await vscode.window.showQuickPick(
    [
      {
        label: 'TrueNAS SCALE',
        description: '25.04 or newer, JSON-RPC over WebSocket',
        serverKind: 'truenas' as ServerKind,
      },
      {
        label: 'Incus',
        description: 'local socket or HTTPS with a client certificate',
        serverKind: 'incus' as ServerKind,
      },
    ],
    { title: 'Add Server', placeHolder: 'What kind of server?', ignoreFocusOut: true },
  );
  if (!kind) throw new CancelledError();
  if (kind.serverKind === 'truenas') {
    const address = await ask({
      title: 'Add TrueNAS Server',
      prompt: 'Host name or IP address (optionally :port)',
      placeHolder: 'truenas.local',
      validateInput: (v) =>
        /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(v.trim())
          ? undefined
          : 'Enter a host name or IP address, e.g. nas.lan or 192.168.1.10:443',
    });
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(address)!;
    const host = m[1];
    const port = m[2] ? Number(m[2]) : undefined;
    let secure = true;
    if (isLoopbackHost(host)) {
      const tls = await vscode.window.showQuickPick(['wss:// (TLS)', 'ws:// (plain, loopback only)'], {
        title: 'Add TrueNAS Server',
        placeHolder: 'Transport',
        ignoreFocusOut: true,
      });
      if (!tls) throw new CancelledError();
      secure = tls.startsWith('wss');
    }
    const username = await ask({
      title: 'Add TrueNAS Server',
      prompt: 'User the API key belongs to',
      value: 'root',
      validateInput: (v) => (v.trim() ? undefined : 'A user name is required.'),
    });
    const apiKey = await ask({
      title: 'Add TrueNAS Server',
      prompt:
        'API key (TrueNAS: Credentials → Users → API Keys). Stored in the OS keyring, never in settings.',
      password: true,
      validateInput: (v) => (v.trim().length >= 8 ? undefined : 'That does not look like an API key.'),
    });
    return {
      server: { id: uniqueId(services, host), kind: 'truenas', label: host, host, port, username, secure },
      apiKey,
    };
  }
  const where = await ask({
    title: 'Add Incus Server',
    prompt: 'Unix socket path, or https:// URL of a remote Incus',
    value: '/var/lib/incus/unix.socket',
    validateInput: (v) =>
      v.startsWith('/') || v.startsWith('https://')
        ? undefined
        : 'Enter an absolute socket path or an https:// URL.',
  });
  if (where.startsWith('/'))
    return {
      server: {
        id: uniqueId(services, 'incus-local'),
        kind: 'incus',
        label: 'Local Incus',
        socketPath: where,
      },
    };
  const clientCert = await ask({
    title: 'Add Incus Server',
    prompt: 'Client certificate (PEM file path)',
    value: '~/.config/incus/client.crt',
  });
  const clientKey = await ask({
    title: 'Add Incus Server',
    prompt: 'Client key (PEM file path)',
    value: '~/.config/incus/client.key',
  });
  const serverCert = await ask({
    title: 'Add Incus Server',
    prompt: 'Server certificate to pin (PEM file path)',
    validateInput: (v) => (v.trim() ? undefined : 'The server certificate is needed to verify the server.'),
  });
  const host = new URL(where).host;
  return {
    server: {
      id: uniqueId(services, host),
      kind: 'incus',
      label: host,
      url: where,
      clientCert,
      clientKey,
      serverCert,
    },
  };
}

function serverFromAnswers(
  services: Services,
  a: Answers,
): { server: NewServer; apiKey?: string } | undefined {
  if (typeof a.kind !== 'string') return undefined;
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  const kind = a.kind as ServerKind;
  const label = str('label') ?? str('host') ?? str('url') ?? kind;
  const server: NewServer = {
    id: str('id') ?? uniqueId(services, label),
    kind,
    label,
    host: str('host'),
    port: typeof a.port === 'number' ? a.port : undefined,
    username: str('username'),
    secure: typeof a.secure === 'boolean' ? a.secure : undefined,
    tlsFingerprint: str('tlsFingerprint'),
    socketPath: str('socketPath'),
    url: str('url'),
    clientCert: str('clientCert'),
    clientKey: str('clientKey'),
    serverCert: str('serverCert'),
    project: str('project'),
  };
  return { server, apiKey: str('apiKey') };
}

/** Connects once before saving, so a wrong address or key is reported now, with the server's reason. */
async function probe(services: Services, server: NewServer, apiKey: string | undefined): Promise<string> {
  if (server.kind === 'truenas') {
    if (!apiKey) throw new ValidationError('An API key is required for a TrueNAS server.');
    const { probeTrueNAS } = await loadTrueNAS();
    const info = await probeTrueNAS(
      {
        serverId: server.id,
        host: server.host ?? '',
        port: server.port,
        username: server.username ?? 'root',
        secure: server.secure,
        tlsFingerprint: server.tlsFingerprint,
      },
      apiKey,
      services.log,
    );
    return info.version;
  }
  const { probeIncus } = await loadIncus();
  const info = await probeIncus(
    {
      serverId: server.id,
      socketPath: server.socketPath,
      url: server.url,
      clientCert: server.clientCert,
      clientKey: server.clientKey,
      serverCert: server.serverCert,
      project: server.project,
    },
    services.log,
  );
  return info.version;
}

export async function addServer(services: Services, arg: unknown): Promise<string> {
  const a = answersOf(arg);
  const { server, apiKey } = serverFromAnswers(services, a) ?? (await promptServer(services));
  if (apiKey) registerSecret(apiKey); // redacted from the log from now on, even if the probe fails
  const version = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Connecting to ${server.label}…` },
    () => probe(services, server, apiKey),
  );
  await services.registry.addServer(server, apiKey);
  services.log.info(`added server ${server.id} (${version})`);
  void vscode.window.showInformationMessage(`Added ${server.label} (${version}).`);
  await services.refresh.refreshNow(server.id);
  return server.id;
}

export async function removeServer(services: Services, arg: unknown): Promise<boolean> {
  const serverId = await resolveServer(services, answersOf(arg), 'Remove which server?');
  await services.registry.removeServer(serverId);
  services.log.info(`removed server ${serverId}`);
  return true;
}

export async function importApiKeys(services: Services): Promise<number> {
  const keys = await services.registry.importableKeys();
  for (const k of keys) await services.keys.store(k.serverId, k.apiKey);
  await vscode.commands.executeCommand('setContext', 'pixels.importableKeys', false);
  if (keys.length)
    void vscode.window.showInformationMessage(
      `Imported ${keys.length} API key${keys.length === 1 ? '' : 's'} into the OS keyring. You can remove api_key from the pixels config file now.`,
    );
  return keys.length;
}

export function registerServerCommands(services: Services): void {
  registerCommand(services, CommandIds.addServer, 'Add server', (arg) => addServer(services, arg));
  registerCommand(services, CommandIds.removeServer, 'Remove server', (arg) => removeServer(services, arg));
  registerCommand(services, CommandIds.refresh, 'Refresh', async (arg) => {
    const a = answersOf(arg);
    await services.refresh.refreshNow(a.server);
    return true;
  });
  registerCommand(services, CommandIds.filter, 'Filter', async (arg) => {
    const a = answersOf(arg);
    const text =
      typeof a.text === 'string'
        ? a.text
        : await vscode.window.showInputBox({
            title: 'Filter Sandboxes',
            prompt: 'Show sandboxes whose name contains',
            value: services.tree.filter,
            ignoreFocusOut: true,
          });
    if (text === undefined) return false;
    services.tree.setFilter(text);
    return true;
  });
  registerCommand(services, CommandIds.clearFilter, 'Clear filter', () => {
    services.tree.setFilter('');
    return true;
  });
  registerCommand(services, CommandIds.showLogs, 'Show logs', () => services.log.show());
  registerCommand(services, CommandIds.importApiKeys, 'Import API keys', () => importApiKeys(services));
}
