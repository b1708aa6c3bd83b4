// Servers and the view: Add Server…, Remove Server, Refresh, Filter…, Show Logs, importing API keys. The TrueNAS
// steps of Add Server are in ../addServerFlow.ts, Trust New Certificate… in ./certificate.ts.
import * as vscode from 'vscode';
import { CancelledError, ValidationError } from '../../core/errors';
import { registerSecret } from '../../core/log';
import type { ServerKind } from '../../core/config';
import {
  ADD_SERVER_STEPS,
  ADD_SERVER_TITLE,
  addTrueNASFromAnswers,
  BACK,
  runTrueNASWizard,
  type AddedServer,
  type NewServer,
  type StepResult,
} from '../addServerFlow';
import { forgetTokenIdentity, joinFromAnswers, runIncusTokenStep, type JoinedServer } from '../addIncusFlow';
import { CommandIds } from '../commandIds';
import { loadIncus } from '../../workflows/lazy';
import { answersOf, resolveServer, type Answers } from '../pick';
import type { Services } from '../services';
import { setupJumpHost } from './jumpHost';
import { registerCommand } from './register';

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

/** Step 1 of the palette path: which kind of server. */
function pickKind(): Promise<ServerKind> {
  return new Promise((resolve, reject) => {
    const pick = vscode.window.createQuickPick<vscode.QuickPickItem & { serverKind: ServerKind }>();
    pick.title = ADD_SERVER_TITLE;
    pick.step = 1;
    pick.totalSteps = ADD_SERVER_STEPS;
    pick.placeholder = 'What kind of server?';
    pick.ignoreFocusOut = true;
    pick.items = [
      {
        label: 'TrueNAS SCALE',
        description: '25.04 or newer, JSON-RPC over WebSocket',
        serverKind: 'truenas',
      },
      {
        label: 'Incus',
        description:
          'a trust token (incus config trust add), the local socket, or HTTPS with certificate files',
        serverKind: 'incus',
      },
    ];
    let settled = false;
    pick.onDidAccept(() => {
      const chosen = pick.selectedItems[0] ?? pick.activeItems[0];
      if (!chosen) return;
      settled = true;
      resolve(chosen.serverKind);
      pick.dispose();
    });
    pick.onDidHide(() => {
      if (!settled) reject(new CancelledError());
      pick.dispose();
    });
    pick.show();
  });
}

/**
 * The palette path for an Incus server: a trust token (joined in the step, see ../addIncusFlow.ts), or a socket
 * path, or a URL and certificate files. BACK from the first Incus step returns to the kind.
 */
async function promptIncus(services: Services): Promise<StepResult<AddedServer>> {
  const first = await runIncusTokenStep(services, (base) => uniqueId(services, base));
  if (first === BACK || !('location' in first)) return first;
  const where = first.location;
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

function incusFromAnswers(services: Services, a: Answers): Promise<AddedServer> | AddedServer {
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  const trustToken = str('trustToken');
  if (trustToken !== undefined)
    return joinFromAnswers(
      services,
      { trustToken, address: str('address'), id: str('id'), label: str('label') },
      (base) => uniqueId(services, base),
    );
  const label = str('label') ?? str('url') ?? 'incus';
  return {
    server: {
      id: str('id') ?? uniqueId(services, label),
      kind: 'incus',
      label,
      socketPath: str('socketPath'),
      url: str('url'),
      clientCert: str('clientCert'),
      clientKey: str('clientKey'),
      serverCert: str('serverCert'),
      project: str('project'),
    },
  };
}

/** Connects once before saving, so a wrong address or certificate is reported now, with the server's reason. */
async function probeIncusServer(services: Services, server: NewServer): Promise<string> {
  const { probeIncus } = await loadIncus();
  const info = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Connecting to ${server.label}…` },
    () =>
      probeIncus(
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
      ),
  );
  return info.version;
}

/** The palette path: kind, then that kind's steps (Back from the TrueNAS address returns to the kind). */
async function promptServer(services: Services): Promise<AddedServer> {
  for (;;) {
    const kind = await pickKind();
    const added =
      kind === 'incus'
        ? await promptIncus(services)
        : await runTrueNASWizard(services, (base) => uniqueId(services, base));
    if (added !== BACK) return added;
  }
}

export async function addServer(services: Services, arg: unknown): Promise<string> {
  const a = answersOf(arg);
  const id = (base: string) => uniqueId(services, base);
  if (typeof a.apiKey === 'string') registerSecret(a.apiKey); // redacted from the log from now on, even on failure
  let added: AddedServer;
  if (a.kind === 'truenas') added = await addTrueNASFromAnswers(services, a, id);
  else if (a.kind === 'incus') {
    if (typeof a.trustToken === 'string') registerSecret(a.trustToken.replace(/\s+/g, ''));
    added = await incusFromAnswers(services, a);
  } else if (a.kind !== undefined) throw new ValidationError(`Unknown server kind "${String(a.kind)}".`);
  else added = await promptServer(services);
  const { server, apiKey } = added;
  const version = added.version ?? (await probeIncusServer(services, server));
  try {
    await services.registry.addServer(server, apiKey);
  } catch (err) {
    await (added as Partial<JoinedServer>).undo?.(); // a token-joined server: its files and trust entry go too
    throw err;
  }
  services.log.info(
    `added server "${server.label}" (${version})${server.tlsFingerprint ? `, certificate pinned (SHA-256 ${server.tlsFingerprint})` : ''}`,
  );
  void vscode.window.showInformationMessage(`Added ${server.label} (${version}).`);
  await offerJumpHost(services, server, a);
  await services.refresh.refreshNow(server.id);
  return server.id;
}

/**
 * The last step of Add Server: how the editor reaches the sandboxes. A NAS (or remote Incus) puts them on a NAT'd
 * bridge by default; SSH through the server itself reaches them with no network change. With answers, only a
 * given `jumpHost` ({ host?, port?, user?, trust }) sets it up; a failure there keeps the added server.
 */
async function offerJumpHost(services: Services, server: NewServer, a: Answers): Promise<void> {
  if (server.kind === 'incus' && !server.url) return; // a local socket: its bridge is on this machine
  let answers: Answers | undefined;
  if (typeof a.kind === 'string') {
    if (typeof a.jumpHost !== 'object' || a.jumpHost === null) return;
    answers = { ...(a.jumpHost as Answers), server: server.id, quiet: true };
  } else {
    const how = await vscode.window.showQuickPick(
      [
        {
          label: 'Through the server over SSH (jump host)',
          description: 'no network change; needs SSH enabled on it',
          jump: true,
        },
        { label: 'Directly', description: 'sandboxes get addresses on your LAN', jump: false },
      ],
      { title: `Add Server: reach the sandboxes of ${server.label}`, ignoreFocusOut: true },
    );
    if (!how?.jump) return;
    answers = { server: server.id };
  }
  const done = await setupJumpHost(services, answers);
  if (!done)
    services.log.info(`server ${server.id}: no jump host set up; run "Pixels: Set Up Jump Host…" any time`);
}

export async function removeServer(services: Services, arg: unknown): Promise<boolean> {
  const serverId = await resolveServer(services, answersOf(arg), 'Remove which server?');
  const server = services.registry.server(serverId);
  await services.registry.removeServer(serverId);
  await forgetTokenIdentity(services, server).catch((err: unknown) =>
    services.log.warn(`server ${serverId}: could not remove its Incus client identity: ${String(err)}`),
  );
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
    // An explicit refresh also asks the sandboxes for their sessions again: the rows are drawn anew even when the
    // server's list did not change (that fires nothing), and drawing a sandbox's rows lists its sessions.
    services.sessions.invalidate(a.server);
    await services.refresh.refreshNow(a.server);
    services.tree.refreshAll();
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
