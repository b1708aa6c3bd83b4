// Test helper: a real OpenSSH server (/usr/sbin/sshd -D -e) on a free 127.0.0.1 port, with its own
// sshd_config, ed25519 host key and authorized_keys in a temp dir, running as the current user.
// `stop()` ends only the sshd this helper started (and the per-connection processes it forked).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { SshTarget } from '../../src/ssh/connect';
import { generateKeyPair, type KeyPair } from '../../src/ssh/keys';

export const SSHD_BINARY = process.env.PIXELS_SSHD ?? '/usr/sbin/sshd';

export interface SshdOptions {
  /** Public key lines allowed to log in. */
  authorizedKeys: string[];
  /** Host key to serve (default: a fresh ed25519 pair). */
  hostKey?: KeyPair;
  /** Extra sshd_config lines (they override the defaults). */
  extraConfig?: string[];
  /**
   * Give sessions an empty HOME in the temp dir (default true), so the login user's own shell rc files
   * (root's ~/.bashrc runs `pyenv init` on this machine, ~200 ms per command) do not run in every command.
   */
  isolateHome?: boolean;
  /**
   * Let other local users read the temp dir and authorized_keys (sshd reads that file as the logging-in user):
   * needed when sessions run as another user than the one running sshd (the NAS stand-in, see nas.ts).
   */
  otherUsers?: boolean;
}

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  /** The user the server lets in (the current user). */
  user: string;
  hostKeyPub: string;
  dir: string;
  /** Kills the per-connection sshd processes: every client connection drops, the listener stays. */
  dropConnections(): void;
  /** Sends a signal to the per-connection processes (SIGSTOP/SIGCONT: a server that hangs without closing). */
  signalConnections(signal: NodeJS.Signals): void;
  /** The server's log (stderr), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function requireSshd(): void {
  if (!existsSync(SSHD_BINARY)) {
    throw new Error(
      `OpenSSH server not found at ${SSHD_BINARY}. Install it: apt-get install -y --no-install-recommends openssh-server openssh-client (scripts/setup.sh does this).`,
    );
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Children of `pid` (from /proc), recursively. */
function descendants(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

export async function startSshd(options: SshdOptions): Promise<Sshd> {
  requireSshd();
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir sshd insists on
  const dir = await fs.mkdtemp(join(tmpdir(), 'pixels-sshd-'));
  const hostKey = options.hostKey ?? generateKeyPair('lab-sshd');
  await fs.writeFile(join(dir, 'host_ed25519'), hostKey.privateOpenSsh, { mode: 0o600 });
  await fs.writeFile(join(dir, 'host_ed25519.pub'), hostKey.publicOpenSsh + '\n', { mode: 0o644 });
  await fs.mkdir(join(dir, 'home'), { mode: 0o700 });
  await fs.writeFile(join(dir, 'authorized_keys'), options.authorizedKeys.join('\n') + '\n', {
    mode: options.otherUsers ? 0o644 : 0o600,
  });
  if (options.otherUsers) await fs.chmod(dir, 0o755);

  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    // sshd takes the first value of a keyword: extra lines go first so that they win.
    const config = [
      ...(options.extraConfig ?? []),
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'MaxStartups 200:30:400',
      'LogLevel INFO',
      ...((options.isolateHome ?? true) ? [`SetEnv HOME=${join(dir, 'home')}`] : []),
    ];
    await fs.writeFile(join(dir, 'sshd_config'), config.join('\n') + '\n');
    const child: ChildProcess = spawn(SSHD_BINARY, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        if (log.length > 200_000) log = log.slice(-100_000);
        if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ready) {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (/Address already in use/.test(log)) continue; // the free port was taken meanwhile
      await fs.rm(dir, { recursive: true, force: true });
      throw new Error(`sshd did not start:\n${log}`);
    }
    const pid = child.pid!;
    const signalConnections = (signal: NodeJS.Signals) => {
      for (const p of descendants(pid)) {
        try {
          process.kill(p, signal);
        } catch {
          // already gone
        }
      }
    };
    const dropConnections = () => {
      signalConnections('SIGCONT'); // a stopped process must not outlive the test
      signalConnections('SIGKILL');
    };
    return {
      host: '127.0.0.1',
      port,
      user: userInfo().username,
      hostKeyPub: hostKey.publicOpenSsh,
      dir,
      log: () => log,
      dropConnections,
      signalConnections,
      async stop() {
        dropConnections();
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        }
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  }
  await fs.rm(dir, { recursive: true, force: true });
  throw new Error('sshd could not find a free port on 127.0.0.1');
}

/** An sshd plus a fresh user key it accepts, and the pinned target to reach it. */
export interface SshdFixture {
  sshd: Sshd;
  userKey: KeyPair;
  target: SshTarget;
}

export async function startSshdFixture(options: Partial<SshdOptions> = {}): Promise<SshdFixture> {
  const userKey = generateKeyPair('pixels-test-user');
  const sshd = await startSshd({
    ...options,
    authorizedKeys: [userKey.publicOpenSsh, ...(options.authorizedKeys ?? [])],
  });
  const target: SshTarget = {
    host: sshd.host,
    port: sshd.port,
    username: sshd.user,
    privateKey: userKey.privateOpenSsh,
    hostKey: sshd.hostKeyPub,
    label: 'test sshd',
  };
  return { sshd, userKey, target };
}

/**
 * Arguments for the OpenSSH client with the same strict setup the extension writes for Remote-SSH: only our key,
 * only our known_hosts, strict host-key checking, never a prompt.
 */
export function strictSshArgs(options: {
  keyFile: string;
  knownHostsPath: string;
  port: number;
  destination: string;
  hostKeyAlias?: string;
}): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    options.keyFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${options.knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    ...(options.hostKeyAlias ? ['-o', `HostKeyAlias=${options.hostKeyAlias}`] : []),
    '-p',
    String(options.port),
    options.destination,
  ];
}
