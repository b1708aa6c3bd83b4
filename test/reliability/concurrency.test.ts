// Part 4 of `npm run test:reliability`: two VS Code windows acting on the same servers at once. Two real extension
// hosts (test/vscode/run.mjs --suite workers: code-server + headless Chromium each, the extension as it ships) run
// test/vscode/workers/concurrency.test.ts with roles "a" and "b": the extension's own commands (create, Set Up SSH
// Access, Open in Sandbox, checkpoint, stop, restore on a TrueNAS simulator; checkpoint and clone on the Incus lab)
// on the same servers, the same PIXELS_SSH_DIR (known_hosts, hosts file, dedicated key) and the same user SSH
// config. Then the end state is read from the servers and the files: nothing lost, duplicated or damaged.
// Prints "concurrency: 2 extension hosts, N operations, 0 failed, 0 corrupted".
// The same two windows then run test/vscode/workers/secrets.test.ts (canary API key, private key and [env] value
// through Add Server, the pixels TOML and the commands; the private key logs in to a real sshd in a lab sandbox);
// CanaryScanner looks for them in both VS Code profiles (settings, logs, globalStorage, workspaceStorage, the
// Chromium profile with the workbench's localStorage and IndexedDB), SSH files, error messages, the arguments and
// environment of every process on this machine, and new temp files. Prints "secret canaries (extension hosts):
// N places checked, 0 leaks".
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import { loadUserIdentity } from '../../src/ssh/keys';
import { KnownHosts } from '../../src/ssh/known-hosts';
import { BEGIN_MARKER, SshConfigWriter } from '../../src/ssh/ssh-config';
import { labBackend, removeTestInstances, testPrefix } from '../integration/incus/helpers';
import { startSimulator } from '../sim/index';
import { CanaryScanner, type Canaries } from './canary-scanner';
import { codeServerSecrets } from './code-server-secrets';

/** What a window's secrets suite writes next to its result (test/vscode/workers/secrets.test.ts). */
interface CanaryReport {
  canaries: Canaries;
  inputs: string;
  outputs: string;
}

const KEY = `1-${'c'.repeat(64)}`;
const ROUNDS = 3;
const ROLES = ['a', 'b'];
const WORKER_TIMEOUT_MS = 200_000;
const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pixels-concurrency-'));
const prefix = testPrefix();
after(() => rmSync(dir, { recursive: true, force: true }));

/** One extension host running the worker suite; killed (its whole process group) if it outlives the bound. */
function runWindow(profile: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const args = ['test/vscode/run.mjs', '--suite', 'workers', '--no-build', '--profile', profile];
    const child = spawn(process.execPath, args, {
      cwd: root,
      // PIXELS_KEEP: code-shim leaves its logs (workbench, code-server, test output) for the canary scan.
      env: { ...process.env, ...env, PIXELS_KEEP: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      out += `\n(killed after ${WORKER_TIMEOUT_MS / 1000} s)`;
      process.kill(-child.pid!, 'SIGKILL');
    }, WORKER_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
  });
}

describe('two windows at once', () => {
  test(
    'two extension hosts on one TrueNAS, one Incus server and one SSH config',
    { timeout: 280_000 },
    async () => {
      const { lab, backend: labServer } = await labBackend();
      const sim = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 30 });
      const sshDir = join(dir, 'ssh');
      const userConfigPath = join(dir, 'user-config');
      const userConfig = '# my own settings\nHost work\n  HostName work.example\n  User me\n';
      writeFileSync(userConfigPath, userConfig);
      const setup = createTrueNASBackend(
        { serverId: 'setup', host: '127.0.0.1', port: sim.port, username: 'truenas_admin', secure: false },
        KEY,
      );
      const labSource = `${prefix}-src`;
      const names = ROLES.flatMap((r) => Array.from({ length: ROUNDS }, (_, i) => `${r}${i}`));
      const corrupted: string[] = [];
      const failures: string[] = [];
      let operations = 0;
      const watch = new CanaryScanner().start();
      const shimDirs: string[] = [];
      const canaryOutputs: string[] = [];
      try {
        await setup.create({ name: 'shared', image: 'debian/12' });
        await labServer.create({ name: labSource, image: lab.image });
        await labServer.stop(labSource);
        // One build for both windows (two builds at once would write dist/extension.js under each other).
        const build = spawnSync(process.execPath, ['esbuild.mjs', '--production'], {
          cwd: root,
          stdio: 'inherit',
        });
        assert.equal(build.status, 0, 'the extension build failed');

        const results = await Promise.all(
          ROLES.map((role) =>
            runWindow(join(dir, `profile-${role}`), {
              PIXELS_SSH_DIR: sshDir,
              PIXELS_CONC_ROLE: role,
              PIXELS_CONC_ROUNDS: String(ROUNDS),
              PIXELS_CONC_RESULT: join(dir, `result-${role}.json`),
              PIXELS_CONC_API_KEY: KEY,
              PIXELS_CONC_SIM_PORT: String(sim.port),
              PIXELS_CONC_USER_CONFIG: userConfigPath,
              PIXELS_CONC_LAB_SOCKET: lab.socket,
              PIXELS_CONC_LAB_SOURCE: labSource,
              PIXELS_CONC_LAB_IMAGE: lab.image,
              PIXELS_CONC_LAB_PREFIX: prefix,
            }),
          ),
        );
        const addresses: Record<string, string> = {};
        for (const [k, r] of results.entries()) {
          const file = join(dir, `result-${ROLES[k]}.json`);
          assert.ok(r.code === 0 && existsSync(file), `window ${ROLES[k]} did not finish:\n${r.out}`);
          const report = JSON.parse(readFileSync(file, 'utf8')) as {
            done: string[];
            failed: string[];
            addresses: Record<string, string>;
          };
          operations += report.done.length + report.failed.length;
          failures.push(...report.failed.map((f) => `window ${ROLES[k]}: ${f}`));
          Object.assign(addresses, report.addresses);
        }

        // TrueNAS: every sandbox once, stopped (restored), with its checkpoint; one checkpoint of "shared" per round.
        const pool = sim.engine.pool;
        const ds = (n: string) => `${pool}/.ix-virt/containers/px-${n}`;
        const instances = (await sim.engine.listInstances()).map((i) => `${i.name}:${i.status}`).sort();
        const wantInstances = ['px-shared:RUNNING', ...names.map((n) => `px-${n}:STOPPED`)].sort();
        if (JSON.stringify(instances) !== JSON.stringify(wantInstances))
          corrupted.push(`TrueNAS instances: ${instances.join(' ')}`);
        const snaps = (await sim.engine.listSnapshots()).map((s) => s.id).sort();
        const wantSnaps = names.flatMap((n) => [`${ds(n)}@c`, `${ds('shared')}@${n}`]).sort();
        if (JSON.stringify(snaps) !== JSON.stringify(wantSnaps))
          corrupted.push(`TrueNAS snapshots: ${snaps.join(' ')}`);

        // Incus: the source with one checkpoint per round, and every clone exactly once.
        const labNames = (await labServer.list())
          .map((s) => s.name)
          .filter((n) => n.startsWith(`${prefix}-`))
          .sort();
        const wantLab = [labSource, ...names.map((n) => `${prefix}-${n}`)].sort();
        if (JSON.stringify(labNames) !== JSON.stringify(wantLab))
          corrupted.push(`Incus sandboxes: ${labNames.join(' ')}`);
        const labSnaps = (await labServer.listCheckpoints(labSource)).map((c) => c.label).sort();
        if (JSON.stringify(labSnaps) !== JSON.stringify([...names].sort()))
          corrupted.push(`Incus checkpoints of ${labSource}: ${labSnaps.join(' ')}`);

        // The user's SSH config: their own lines intact, our Include block exactly once.
        const config = readFileSync(userConfigPath, 'utf8');
        if (!config.includes(userConfig)) corrupted.push('the user SSH config lost its own lines');
        if (config.split(BEGIN_MARKER).length !== 2)
          corrupted.push('the Include block is not there exactly once');
        // Our hosts file: every sandbox once, with the address its window was given.
        const writer = new SshConfigWriter({
          configPath: userConfigPath,
          hostsPath: join(sshDir, 'config'),
          sshBinary: false,
        });
        const hosts = (await writer.hosts()).map((h) => `${h.alias}=${h.hostName}`).sort();
        const wantHosts = names.map((n) => `px-${n}.sim=${addresses[n]}`).sort();
        if (JSON.stringify(hosts) !== JSON.stringify(wantHosts))
          corrupted.push(`SSH hosts: ${hosts.join(' ')}`);
        // known_hosts: one line per sandbox, the key that sandbox serves.
        const knownLines = readFileSync(join(sshDir, 'known_hosts'), 'utf8').trim().split('\n');
        if (knownLines.length !== names.length) corrupted.push(`known_hosts has ${knownLines.length} lines`);
        const known = new KnownHosts(join(sshDir, 'known_hosts'));
        // The dedicated key both windows needed: one key, authorised in every sandbox of both windows.
        const userKey = (await loadUserIdentity(join(sshDir, 'id_ed25519'))).publicOpenSsh.split(' ')[1];
        for (const n of names) {
          const pinned = await known.lookup(`px-${n}.sim`);
          const served = (
            await sim.engine.readFile(ds(n), 'rootfs/etc/ssh/ssh_host_ed25519_key.pub')
          )?.toString();
          if (pinned.length !== 1 || !served || !served.includes(pinned[0].split(' ')[1]))
            corrupted.push(`known_hosts entry of px-${n}.sim`);
          const authorized =
            (await sim.engine.readFile(ds(n), 'rootfs/root/.ssh/authorized_keys'))?.toString() ?? '';
          if (!authorized.includes(userKey)) corrupted.push(`px-${n} does not authorise the dedicated key`);
        }
        // Secret canaries: both windows' canaries, looked for in every place either window could have put them.
        const reports = ROLES.map(
          (role) =>
            JSON.parse(readFileSync(join(dir, `result-${role}.json.canaries.json`), 'utf8')) as CanaryReport,
        );
        const canaries: Canaries = {};
        for (const [k, r] of reports.entries()) {
          canaryOutputs.push(r.outputs);
          for (const [name, value] of Object.entries(r.canaries))
            canaries[`${name} (window ${ROLES[k]})`] = value;
        }
        watch.stop();
        watch.canaries = canaries;
        watch.checkProcesses();
        for (const [k, role] of ROLES.entries()) {
          const profile = join(dir, `profile-${role}`);
          const userData = join(profile, 'user-data');
          const userSettings = join(userData, 'User', 'settings.json');
          assert.ok(existsSync(userSettings), `window ${role} wrote no user settings`);
          const cache = join(
            userData,
            'User',
            'globalStorage',
            'pixels-dev.pixels-vscode',
            'sandbox-cache.json',
          );
          assert.ok(existsSync(cache), `window ${role} left no sandbox cache in globalStorage`);
          // The whole profile: settings, logs, globalStorage (our sandbox cache), workspaceStorage, Machine.
          watch.checkFiles('VS Code profile', userData);
          watch.checkFiles('workspace settings', join(profile, 'workspace', '.vscode'));
          const logs = join(userData, 'logs');
          const logFiles = readdirSync(logs, { recursive: true }).map(String);
          assert.ok(
            logFiles.some((f) => /pixels/i.test(f)),
            `no log file of the Pixels output channel under ${logs}: ${logFiles.join(' ')}`,
          );
          watch.check(`window ${role}'s console`, results[k].out);
          watch.check(
            `window ${role}'s error messages`,
            readFileSync(join(dir, `result-${role}.json.canaries.json.messages.json`), 'utf8'),
          );
          watch.checkFiles('SSH files', reports[k].outputs);
        }
        watch.checkFiles('SSH files', sshDir);
        watch.checkFiles('SSH files', userConfigPath);
        for (const entry of watch.newTempEntries()) {
          if (entry === dir || canaryOutputs.includes(entry)) continue;
          const output = join(entry, 'test-output.log');
          if (
            /pixels-vscode-test-/.test(entry) &&
            existsSync(output) &&
            readFileSync(output, 'utf8').includes(prefix)
          )
            shimDirs.push(entry);
          // A window's code-shim folder holds its Chromium profile: the workbench's state (IndexedDB) and the
          // secrets (localStorage "secrets.provider", sealed with a key half from code-server's user-data dir).
          watch.checkFiles(
            'temp',
            entry,
            reports.map((r) => r.inputs),
          );
        }
        assert.equal(shimDirs.length, ROLES.length, 'the logs of both windows were scanned');
        // The lab sandbox each window logged in to was seen from here, its [env] values in its processes.
        for (const role of ROLES)
          assert.ok(
            watch.expected.some((e) =>
              new RegExp(
                `^\\[env\\] value.*\\(window ${role}\\) in the environment of process \\d+ \\(.*inside sandbox (px-)?${prefix}-canary-${role}\\)`,
              ).test(e),
            ),
            `no process of ${prefix}-canary-${role} with its [env] value was seen: ${watch.expected.join('; ')}`,
          );
        for (const shim of shimDirs) {
          const role = /concurrency worker \S+, window (\w+)/.exec(
            readFileSync(join(shim, 'test-output.log'), 'utf8'),
          )?.[1];
          const k = ROLES.indexOf(role ?? '');
          assert.ok(k !== -1, `which window ran in ${shim}`);
          assert.ok(
            watch.places.some((p) =>
              p.startsWith(`temp ${join(shim, 'chromium', 'Default', 'Local Storage')}`),
            ),
            `the workbench's localStorage in ${shim} was scanned`,
          );
          // The place the scan found clean is where the key is: sealed in the workbench's localStorage.
          const stored = codeServerSecrets(join(shim, 'chromium'), join(dir, `profile-${role}`, 'user-data'));
          const apiKey = reports[k].canaries['API key'];
          assert.ok(
            stored.some((secrets) =>
              Object.entries(secrets).some(
                ([key, value]) => key.includes('pixels.apiKey.canary') && value === apiKey,
              ),
            ),
            `window ${role}'s API key is sealed in its localStorage: ${stored.map((s) => Object.keys(s).join(' ')).join(' | ')}`,
          );
        }
      } finally {
        // The servers first: nothing below may keep this process (and the shared lock) alive.
        watch.stop();
        setup.dispose();
        await sim.close();
        await removeTestInstances(lab, prefix);
        for (const d of [...shimDirs, ...canaryOutputs])
          if (typeof d === 'string') rmSync(d, { recursive: true, force: true });
      }
      console.log(
        `concurrency: 2 extension hosts, ${operations} operations, ${failures.length} failed, ${corrupted.length} corrupted`,
      );
      console.log(
        `secret canaries (extension hosts): ${watch.places.length} places checked, ${watch.leaks.length} leaks`,
      );
      assert.deepEqual(failures, []);
      assert.deepEqual(corrupted, []);
      assert.deepEqual(watch.leaks, []);
      assert.equal(operations, ROLES.length * ROUNDS * 9);
    },
  );
});
