// "Add Server…" for an Incus host with a trust token, the way `incus remote add <name> <token>` works and with no
// certificate files to find: the token (from `incus config trust add <name>` on the host) names the server's
// addresses and certificate fingerprint. Pixels makes a client certificate, checks the server's certificate
// against the token before sending anything, redeems the token, and keeps the identity in its private storage
// (src/backends/incus/client-identity.ts says where and why). Nothing is kept, here or on the server, when a step
// fails. Removing the server deletes the files and, when it can, its trust entry on the server.
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { makeClientCertificate } from '../core/client-certificate';
import { userMessage } from '../core/errors';
import type { ServerConfig } from '../core/config';
import { decodeTrustToken } from '../core/incus-trust-token';
import { BACK, inputStep, type AddedServer, type StepResult } from './addServerFlow';
import { loadIncus } from '../workflows/lazy';
import type { Services } from './services';

/** Where token-made identities live: one folder per server id under the extension's global storage. */
export function incusIdentityRoot(services: Services): string {
  return join(services.context.globalStorageUri.fsPath, 'incus-clients');
}

/** A socket path or an https:// URL; anything else typed in the Incus step is taken for a trust token. */
export function isIncusLocation(value: string): boolean {
  return value.startsWith('/') || /^https:\/\//i.test(value);
}

export interface TokenJoin {
  token: string;
  /** host[:port] to use instead of the token's addresses. */
  address?: string;
  id?: string;
  label?: string;
}

/** A server joined with a token, and how to take it back if saving it fails (files and trust entry). */
export interface JoinedServer extends AddedServer {
  undo: () => Promise<void>;
}

function clientName(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): the host name alone is enough
  }
  return `pixels-vscode ${user}@${hostname()}`;
}

/**
 * Redeems the token, stores the identity, and connects once more with the stored files exactly as the backend
 * will. Any failure leaves no files and no trust entry.
 */
export async function joinWithTrustToken(
  services: Services,
  join_: TokenJoin,
  uniqueId: (base: string) => string,
): Promise<JoinedServer> {
  const token = decodeTrustToken(join_.token);
  const incus = await loadIncus();
  const client = makeClientCertificate({ commonName: clientName() });
  const redeemed = await incus.redeemTrustToken({ token, address: join_.address, client, log: services.log });
  const host = new URL(redeemed.url).host;
  const id = join_.id ?? uniqueId(host);
  let stored: Awaited<ReturnType<typeof incus.saveClientIdentity>> | undefined;
  const undo = async () => {
    if (stored) {
      await incus.forgetTrust({ url: redeemed.url, ...stored }, client.fingerprint, services.log);
      await incus.removeClientIdentity(stored.dir);
    }
  };
  try {
    stored = await incus.saveClientIdentity(incusIdentityRoot(services), id, client, redeemed.serverCert);
    const { version } = await incus.probeIncus(
      {
        serverId: id,
        url: redeemed.url,
        clientCert: stored.clientCert,
        clientKey: stored.clientKey,
        serverCert: stored.serverCert,
      },
      services.log,
    );
    services.log.info(
      `incus: joined ${redeemed.url} with trust token "${token.clientName}"; client certificate ${client.fingerprint} ` +
        `kept in ${stored.dir} (key 0600)`,
    );
    const server: AddedServer['server'] = {
      id,
      kind: 'incus',
      label: join_.label ?? host,
      url: redeemed.url,
      clientCert: stored.clientCert,
      clientKey: stored.clientKey,
      serverCert: stored.serverCert,
    };
    return { server, version, undo };
  } catch (err) {
    if (stored) await undo();
    else
      // Saving failed: the files are gone already; the trust entry is removed with the in-memory identity.
      await incus.forgetTrustWith(redeemed.url, client, redeemed.serverCert, services.log);
    throw err;
  }
}

/**
 * The Incus steps of the palette path: (2) a trust token, or a socket path / https:// URL (returned for the
 * file-based steps); (3) only when none of the token's addresses answered: the host's address from here.
 */
export async function runIncusTokenStep(
  services: Services,
  uniqueId: (base: string) => string,
): Promise<StepResult<JoinedServer | { location: string }>> {
  let text = '';
  let address = '';
  let step = 2;
  let joined: JoinedServer | undefined;
  const attempt = async (withAddress?: string): Promise<string | undefined> => {
    try {
      joined = await joinWithTrustToken(services, { token: text, address: withAddress }, uniqueId);
      return undefined;
    } catch (err) {
      const { TrustTokenUnreachableError } = await loadIncus();
      if (err instanceof TrustTokenUnreachableError && !withAddress) {
        step = 3; // ask for another address
        return undefined;
      }
      return `${userMessage(err)} Press Enter (or Retry) to try again.`;
    }
  };
  for (;;) {
    if (step === 2) {
      const result = await inputStep({
        step: 2,
        totalSteps: 2,
        value: text,
        prompt:
          'Paste a trust token: run `incus config trust add <name>` on the Incus host. Pixels makes and keeps the ' +
          'client certificate and checks the server certificate against the token. (Or a socket path, or an ' +
          'https:// URL if you have certificate files.)',
        placeholder: 'trust token, /var/lib/incus/unix.socket, or https://host:8443',
        validate: (v) => {
          if (isIncusLocation(v.trim())) return undefined;
          try {
            decodeTrustToken(v); // only the shape here; the server decides whether it is still good
            return undefined;
          } catch (err) {
            return userMessage(err);
          }
        },
        accept: async (v) => {
          text = v;
          return isIncusLocation(v) ? undefined : attempt();
        },
      });
      if (result === BACK) return BACK;
      if (isIncusLocation(result)) return { location: result };
      if (joined) return joined;
    } else {
      const result = await inputStep({
        step: 3,
        totalSteps: 3,
        value: address,
        prompt:
          'None of the addresses in the token answered from here (see Pixels: Show Logs). Address of the Incus ' +
          'host as this machine reaches it (host or host:port; Incus listens on 8443 by default).',
        placeholder: 'incus.lan, 192.168.1.20:8443',
        validate: (v) => (v.trim() === '' ? 'Enter the host name or address.' : undefined),
        accept: async (v) => {
          address = v;
          return attempt(v);
        },
      });
      if (result === BACK) {
        step = 2;
        continue;
      }
      if (joined) return joined;
    }
  }
}

/** The answers path (tests, scripts): `{ kind: 'incus', trustToken, address?, id?, label? }`, with progress. */
export function joinFromAnswers(
  services: Services,
  a: { trustToken: string; address?: string; id?: string; label?: string },
  uniqueId: (base: string) => string,
): Promise<JoinedServer> {
  return Promise.resolve(
    vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: 'Joining the Incus server with the trust token…',
      },
      () => joinWithTrustToken(services, { token: a.trustToken, ...a }, uniqueId),
    ),
  );
}

/** Remove Server for a server joined with a token: its trust entry on the server (best effort) and its files. */
export async function forgetTokenIdentity(services: Services, server: ServerConfig): Promise<void> {
  const root = incusIdentityRoot(services);
  const incus = await loadIncus();
  if (server.kind !== 'incus' || !server.url || !incus.isInside(root, server.clientKey)) return;
  const files = {
    url: server.url,
    clientCert: server.clientCert!,
    clientKey: server.clientKey!,
    serverCert: server.serverCert!,
  };
  const { certFingerprint } = incus;
  let fingerprint: string | undefined;
  try {
    const { readFile } = await import('node:fs/promises');
    fingerprint = certFingerprint(await readFile(files.clientCert, 'utf8'));
  } catch {
    fingerprint = undefined;
  }
  if (fingerprint && !(await incus.forgetTrust(files, fingerprint, services.log)))
    services.log.warn(
      `server "${server.label}": its trust entry ${fingerprint} stays on the Incus host (remove it there with ` +
        '`incus config trust remove`); the client key is deleted here.',
    );
  await incus.removeClientIdentity(incus.identityDir(root, server.id));
}
