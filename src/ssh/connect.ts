// Opens one authenticated ssh2 connection to a target whose host key is pinned. The server must present
// exactly the key we generated for the sandbox: no TOFU, no "accept new", and a mismatch is a SecurityError
// naming both fingerprints (never a silent reconnect).
import { promises as fs } from 'node:fs';
import { Client, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import {
  CancelledError,
  ConnectionError,
  NotAuthenticatedError,
  PixelsError,
  SecurityError,
  TimeoutError,
  ValidationError,
} from '../core/errors';
import { fingerprint, parsePublicKey } from './keys';

export interface SshTarget {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** Private key text (OpenSSH or PEM). Takes precedence over `identityFile`. */
  privateKey?: Buffer | string;
  /** Path of the private key, read at connect time. */
  identityFile?: string;
  /** Path of an ssh-agent socket, used when no key is given. */
  agent?: string;
  /** The pinned host key, one `type base64 [comment]` line. Required: we never trust a key on first use. */
  hostKey: string;
  /** How messages name the target, e.g. "sandbox dev"; default `user@host:port`. */
  label?: string;
}

export interface ConnectOptions {
  /** Handshake + authentication must finish within this (default 20 s). */
  readyTimeoutMs?: number;
  /** Keepalive probe interval (default 15 s; 0 = off) and how many may go unanswered (default 3). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  signal?: AbortSignal;
}

export function targetLabel(target: SshTarget): string {
  return target.label ?? `${target.username}@${target.host}:${target.port ?? 22}`;
}

/** Host key algorithms to offer, so the server presents the key type we pinned (and no other). */
function hostKeyAlgorithms(type: string): ServerHostKeyAlgorithm[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [type as ServerHostKeyAlgorithm];
}

/** A network-level failure code (ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT …) carried by a ConnectionError's cause. */
export function networkErrorCode(err: unknown): string | undefined {
  const cause = err instanceof PixelsError ? err.cause : err;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

export async function connect(target: SshTarget, options: ConnectOptions = {}): Promise<Client> {
  const pinned = parsePublicKey(target.hostKey);
  const label = targetLabel(target);
  if (options.signal?.aborted) throw new CancelledError();
  let privateKey = target.privateKey;
  if (privateKey === undefined && target.identityFile) {
    try {
      privateKey = await fs.readFile(target.identityFile);
    } catch (err) {
      throw new ValidationError(`Cannot read SSH key ${target.identityFile}: ${(err as Error).message}`, [], {
        cause: err,
      });
    }
  }
  if (privateKey === undefined && !target.agent) {
    throw new ValidationError(`No SSH key or agent configured for ${label}.`);
  }

  let presented: Buffer | undefined;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port ?? 22,
    username: target.username,
    readyTimeout: options.readyTimeoutMs ?? 20_000,
    keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: options.keepaliveCountMax ?? 3,
    algorithms: { serverHostKey: hostKeyAlgorithms(pinned.type) },
    hostVerifier: (key: Buffer) => {
      presented = Buffer.from(key);
      return key.equals(pinned.blob);
    },
  };
  if (privateKey !== undefined) config.privateKey = privateKey;
  else config.agent = target.agent;

  const client = new Client();
  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      client.removeListener('ready', onReady);
      if (err) {
        client.removeListener('error', onError);
        client.on('error', () => {}); // late socket errors after we gave up must not crash the process
        client.end();
        reject(err);
      } else {
        client.removeListener('error', onError);
        client.on('error', () => {}); // the owner learns about a dead connection from its 'close' event
        resolve(client);
      }
    };
    // Small request/response packets: without TCP_NODELAY, Nagle + delayed ACKs add ~40 ms to each command.
    const onReady = () => {
      client.setNoDelay(true);
      finish();
    };
    const onError = (err: Error & { level?: string; code?: string }) => {
      if (presented && !presented.equals(pinned.blob)) {
        finish(
          new SecurityError(
            `Host key mismatch for ${label}: expected ${fingerprint(pinned.blob)}, got ${fingerprint(presented)}. ` +
              'The connection was refused; nothing was sent.',
          ),
        );
      } else if (err.level === 'client-authentication') {
        finish(
          new NotAuthenticatedError(`SSH authentication as ${target.username} failed for ${label}.`, {
            cause: err,
          }),
        );
      } else if (err.level === 'client-timeout') {
        finish(new TimeoutError(`SSH handshake with ${label} timed out.`, { cause: err }));
      } else {
        const code = err.code ? ` (${err.code})` : '';
        finish(new ConnectionError(`Cannot connect to ${label}${code}: ${err.message}`, { cause: err }));
      }
    };
    const onAbort = () => finish(new CancelledError());
    client.on('ready', onReady);
    client.on('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    client.connect(config);
  });
}
