// One "window" of the concurrency test: a separate Node process running the product's vscode-free layers (the
// TrueNAS backend, the SSH config writer, known_hosts) against the same server and the same files as another.
// Prints one JSON line: the operations that succeeded and those that failed (with their errors).
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import { KnownHosts } from '../../src/ssh/known-hosts';
import { SshConfigWriter } from '../../src/ssh/ssh-config';

interface Args {
  id: string;
  port: number;
  apiKey: string;
  dir: string;
  rounds: number;
  hostKey: string;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as Args;
  const backend = createTrueNASBackend(
    {
      serverId: 'shared',
      host: '127.0.0.1',
      port: a.port,
      username: 'truenas_admin',
      secure: false,
      callTimeoutMs: 15_000,
    },
    a.apiKey,
  );
  const writer = new SshConfigWriter({
    configPath: `${a.dir}/config`,
    hostsPath: `${a.dir}/pixels/config`,
    sshBinary: false,
  });
  const knownHosts = new KnownHosts(`${a.dir}/pixels/known_hosts`);
  const done: string[] = [];
  const failed: string[] = [];
  const step = async (what: string, work: () => Promise<unknown>) => {
    try {
      await work();
      done.push(what);
    } catch (err) {
      failed.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  try {
    for (let i = 0; i < a.rounds; i++) {
      const name = `${a.id}${i}`;
      const alias = `px-${name}`;
      const ip = `10.99.${a.id === 'a' ? 1 : 2}.${i + 1}`;
      // Server work and file work of one round run side by side, as the extension does.
      await Promise.all([
        (async () => {
          await step(`create ${name}`, () => backend.create({ name, image: 'debian/12' }));
          await step(`checkpoint ${name}@c`, () => backend.createCheckpoint(name, 'c'));
          await step(`clone shared@base -> ${name}k`, () =>
            backend.clone({ sandbox: 'shared', checkpoint: 'base' }, `${name}k`),
          );
          await step(`checkpoint shared@${name}`, () => backend.createCheckpoint('shared', name));
          await step(`restore ${name}@c`, () => backend.restoreCheckpoint(name, 'c'));
        })(),
        (async () => {
          await step(`ssh config ${alias}`, () =>
            writer.upsertHost({
              alias,
              hostName: ip,
              user: 'pixel',
              identityFile: `${a.dir}/id_ed25519`,
              knownHostsFile: `${a.dir}/pixels/known_hosts`,
            }),
          );
          await step(`known_hosts ${alias}`, () => knownHosts.set([alias, ip], a.hostKey));
        })(),
      ]);
    }
  } finally {
    backend.dispose();
  }
  process.stdout.write(`${JSON.stringify({ done, failed })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
