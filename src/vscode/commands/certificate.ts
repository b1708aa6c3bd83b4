// "Trust New Certificate…": when a TrueNAS's certificate no longer matches its pin (or was never trusted), fetch
// the one it presents now, show it next to the pinned fingerprint, and re-pin only on an explicit yes. Never a
// silent re-trust, and never plain ws:// as a way around.
import * as vscode from 'vscode';
import { fetchServerCertificate, formatFingerprint, sameFingerprint } from '../../core/certificate';
import { CancelledError, ValidationError } from '../../core/errors';
import { defaultPort } from '../../core/server-address';
import { askTrust, trustAnswerOf } from '../certificatePrompt';
import { CommandIds } from '../commandIds';
import { answersOf } from '../pick';
import type { Services } from '../services';
import { registerCommand } from './register';

/** The TrueNAS server meant: by id, by host (from a refused connection's error), or picked. */
async function resolveTrueNAS(services: Services, server: unknown, host: unknown): Promise<string> {
  if (typeof server === 'string') return services.registry.server(server).id;
  const candidates = services.registry
    .servers()
    .filter((s) => s.kind === 'truenas' && (typeof host !== 'string' || s.host === host));
  if (candidates.length === 1) return candidates[0].id;
  if (candidates.length === 0)
    throw new ValidationError(
      typeof host === 'string'
        ? `No TrueNAS server with host "${host}" is configured.`
        : 'No TrueNAS server is configured. Run "Pixels: Add Server…" first.',
    );
  const picked = await vscode.window.showQuickPick(
    candidates.map((s) => ({ label: s.label, description: `${s.host}:${s.port ?? 443}`, id: s.id })),
    { placeHolder: 'Trust the new certificate of which server?', ignoreFocusOut: true },
  );
  if (!picked) throw new CancelledError();
  return picked.id;
}

export async function trustNewCertificate(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const serverId = await resolveTrueNAS(services, a.server, a.host);
  const server = services.registry.server(serverId);
  if (server.kind !== 'truenas') throw new ValidationError(`"${server.label}" is not a TrueNAS server.`);
  if (server.secure === false)
    throw new ValidationError(
      `"${server.label}" uses plain ws:// on a loopback address: there is no certificate.`,
    );
  const host = server.host ?? '';
  const port = server.port ?? defaultPort(true);
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const fetched = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Reading the certificate of ${where}…` },
    () => fetchServerCertificate(host, port),
  );
  const cert = fetched.certificate;
  const pinned = server.tlsFingerprint ? formatFingerprint(server.tlsFingerprint) : undefined;
  if (pinned && sameFingerprint(pinned, cert.fingerprint)) {
    void vscode.window.showInformationMessage(
      `${server.label} still presents the pinned certificate (SHA-256 ${pinned}); nothing changed.`,
    );
    return false;
  }
  if (!pinned && fetched.caTrusted) {
    void vscode.window.showInformationMessage(
      `The certificate of ${server.label} is verified by a certificate authority; there is nothing to pin.`,
    );
    return false;
  }
  if (!(await askTrust(where, cert, pinned, trustAnswerOf(a.trust)))) {
    services.log.info(
      `trust certificate: ${where} SHA-256 ${cert.fingerprint} not trusted; the pin is unchanged`,
    );
    return false;
  }
  await services.registry.pinCertificate(serverId, cert.fingerprint);
  services.log.info(
    `trust certificate: ${server.id} now pinned to SHA-256 ${cert.fingerprint}${pinned ? ` (was ${pinned})` : ''}`,
  );
  void vscode.window.showInformationMessage(`Pinned the new certificate of ${server.label}.`);
  await services.refresh.refreshNow(serverId);
  return true;
}

export function registerCertificateCommands(services: Services): void {
  registerCommand(services, CommandIds.trustNewCertificate, 'Trust new certificate', (arg) =>
    trustNewCertificate(services, arg),
  );
}
