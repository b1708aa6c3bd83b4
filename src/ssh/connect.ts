// Opens one authenticated ssh2 connection to a target whose host key is pinned. The server must present
// exactly the key we generated for the sandbox: no TOFU, no "accept new", and a mismatch is a SecurityError
// naming both fingerprints (never a silent reconnect). A target behind a jump host (the NAS, for a sandbox on its
// NAT'd bridge) is reached as OpenSSH's ProxyJump does: the jump host's own pinned key and login first, then a
// direct-tcpip channel to the target's port, and the target's SSH session over that channel.
import { promises as fs } from 'node:fs';
import type { Duplex } from 'node:stream';
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
  /** Reach the target through this SSH server (ProxyJump): its host key is pinned like the target's. */
  jump?: JumpHost;
}

/** An SSH server used only to open a TCP channel to the target (no command runs on it). */
export type JumpHost = Omit<SshTarget, 'jump'>;

const jumpFailures = new WeakSet<Error>();

/**
 * The jump host itself failed (unreachable, wrong host key, login refused): unlike a sandbox that is still
 * booting, waiting does not help, so readiness polling gives up at once.
 */
export function isJumpHostFailure(err: unknown): boolean {
  return err instanceof Error && jumpFailures.has(err);
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

/**
 * Opens one authenticated connection to `target`; through `target.jump` when set (a connection of its own to the
 * jump host, ended with the target's; the pool shares one instead, see `via`).
 */
export async function connect(
  target: SshTarget,
  options: ConnectOptions = {},
  via?: Client,
): Promise<Client> {
  if (!target.jump) return open(target, options);
  const jump = via ?? (await connectJumpHost(target.jump, options));
  try {
    const stream = await forwardTo(jump, target);
    const client = await open(target, options, stream);
    if (!via) client.once('close', () => jump.end());
    return client;
  } catch (err) {
    if (!via) jump.end();
    throw err;
  }
}

/** Connects to a jump host; its failures are marked (isJumpHostFailure) and name it as the jump host. */
export async function connectJumpHost(jump: JumpHost, options: ConnectOptions = {}): Promise<Client> {
  const label = jump.label ?? `jump host ${jump.username}@${jump.host}:${jump.port ?? 22}`;
  try {
    return await open({ ...jump, label }, options);
  } catch (err) {
    if (!(err instanceof Error) || err instanceof CancelledError) throw err;
    const failure = explainJumpFailure(err, jump);
    jumpFailures.add(failure);
    throw failure;
  }
}

/** What to check on the jump host (usually the NAS) for the usual failures. */
function explainJumpFailure(err: Error, jump: JumpHost): Error {
  const port = jump.port ?? 22;
  if (err instanceof ConnectionError && networkErrorCode(err) === 'ECONNREFUSED')
    return new ConnectionError(
      `${err.message} Nothing accepts SSH on ${jump.host}:${port}: is the SSH service running there (TrueNAS: System → Services → SSH)?`,
      { cause: err.cause },
    );
  if (err instanceof NotAuthenticatedError)
    return new NotAuthenticatedError(
      `${err.message} Check the user (TrueNAS 25.04+: truenas_admin; older upgraded systems: root) and that your public key is in that user's authorized keys (TrueNAS: Credentials → Users → Edit → Authorized Keys).`,
      { cause: err.cause },
    );
  return err;
}

/** A direct-tcpip channel from the jump host to the target's SSH port. */
function forwardTo(jump: Client, target: SshTarget): Promise<Duplex> {
  const port = target.port ?? 22;
  return new Promise((resolve, reject) => {
    try {
      jump.forwardOut('127.0.0.1', 0, target.host, port, (err, stream) => {
        if (err)
          reject(
            new ConnectionError(
              `Cannot connect to ${targetLabel(target)}: the jump host ${target.jump!.host} could not open ${target.host}:${port} (${err.message.replace(/^\(SSH\) /, '')}).`,
              { cause: err },
            ),
          );
        else resolve(stream);
      });
    } catch (err) {
      // The jump connection ended between the pool's check and this call.
      reject(
        new ConnectionError(`The connection to jump host ${target.jump!.host} was closed.`, { cause: err }),
      );
    }
  });
}

async function open(target: SshTarget, options: ConnectOptions, sock?: Duplex): Promise<Client> {
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
  if (sock) config.sock = sock;

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

/**
 * The host key a server presents, fetched without logging in (the handshake stops right after the key), so the
 * user can check its fingerprint before it is pinned. Returns one `type base64` line.
 */
export function scanHostKey(host: string, port = 22, timeoutMs = 15_000): Promise<string> {
  const label = `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const client = new Client();
    let presented: Buffer | undefined;
    client.on('error', (err: Error & { code?: string }) => {
      client.end();
      if (presented) {
        const type = presented.subarray(4, 4 + presented.readUInt32BE(0)).toString();
        return resolve(`${type} ${presented.toString('base64')}`);
      }
      const code = err.code ? ` (${err.code})` : '';
      const hint =
        err.code === 'ECONNREFUSED'
          ? ` Nothing accepts SSH on ${label}: is the SSH service running there (TrueNAS: System → Services → SSH)?`
          : '';
      reject(
        new ConnectionError(`Cannot connect to ${label}${code}: ${err.message}.${hint}`, { cause: err }),
      );
    });
    client.on('ready', () => {
      client.end(); // cannot happen: the verifier refuses every key
      reject(new ConnectionError(`${label} did not present a host key.`));
    });
    client.connect({
      host,
      port,
      username: 'pixels-host-key-scan',
      readyTimeout: timeoutMs,
      algorithms: {
        serverHostKey: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256'],
      },
      hostVerifier: (key: Buffer) => {
        presented = Buffer.from(key);
        return false;
      },
    });
  });
}
