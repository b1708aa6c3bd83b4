// One "window" of test/reliability/concurrency.test.ts: a real extension host driving the extension's own commands
// (create, Set Up SSH Access, Open in Sandbox, checkpoint, stop, restore; checkpoint + clone on Incus) while
// another extension host does the same on the same servers and the same SSH files (PIXELS_SSH_DIR,
// pixels.ssh.configFile). Started only by that test (run.mjs --suite workers), never in the normal run: it needs
// the servers the test starts. It records every operation's outcome in PIXELS_CONC_RESULT (JSON); the test that
// started it checks the end state on the servers and in the files.
import { writeFileSync } from 'node:fs';
import * as vscode from 'vscode';
import { pixelsApi, setServers, simServer } from '../suite/helpers';

function required(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set: this suite is started by test/reliability/concurrency.test.ts`);
  return value;
}

suite('concurrency worker', function () {
  this.timeout(240_000);
  const role = required('PIXELS_CONC_ROLE');
  const rounds = Number(required('PIXELS_CONC_ROUNDS'));
  const resultFile = required('PIXELS_CONC_RESULT');
  const labSource = required('PIXELS_CONC_LAB_SOURCE');
  const labPrefix = required('PIXELS_CONC_LAB_PREFIX');
  let openFolderSpy: vscode.Disposable | undefined;

  suiteSetup(async () => {
    const api = await pixelsApi();
    await api.setApiKey('sim', required('PIXELS_CONC_API_KEY'));
    const c = vscode.workspace.getConfiguration('pixels');
    await c.update('ssh.configFile', required('PIXELS_CONC_USER_CONFIG'), vscode.ConfigurationTarget.Global);
    await setServers([
      simServer(Number(required('PIXELS_CONC_SIM_PORT'))),
      {
        id: 'lab',
        kind: 'incus',
        label: 'Incus lab',
        socketPath: required('PIXELS_CONC_LAB_SOCKET'),
      } as never,
    ]);
    // Open in Sandbox ends by asking VS Code to open a remote window: no second window here.
    openFolderSpy = vscode.commands.registerCommand('vscode.openFolder', () => undefined);
  });

  suiteTeardown(async () => {
    openFolderSpy?.dispose();
    await setServers([]);
    await vscode.workspace
      .getConfiguration('pixels')
      .update('ssh.configFile', undefined, vscode.ConfigurationTarget.Global);
  });

  test(`window ${role}: ${rounds} rounds of commands on the shared servers`, async () => {
    const api = await pixelsApi();
    console.log(`concurrency worker ${labPrefix}, window ${role}`); // the caller finds this run's logs by it
    const done: string[] = [];
    const failed: string[] = [];
    const addresses: Record<string, string> = {};
    // A command reports failure by returning undefined/false (the message goes to the user, and to lastError).
    const step = async (what: string, command: string, args: object): Promise<unknown> => {
      try {
        const result = await vscode.commands.executeCommand(command, args);
        if (result === undefined || result === false)
          failed.push(`${what}: ${api.lastError()?.message ?? 'no result'}`);
        else done.push(what);
        return result;
      } catch (err) {
        failed.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      }
    };
    for (let i = 0; i < rounds; i++) {
      const name = `${role}${i}`;
      // The TrueNAS chain and the Incus chain of one round run side by side, as a user's commands in two views can.
      await Promise.all([
        (async () => {
          const made = (await step(`create ${name}`, 'pixels.createSandbox', {
            server: 'sim',
            name,
            image: 'ubuntu/24.04',
            provision: false, // the simulator runs no sshd: keys go in with Set Up SSH Access
            egress: 'unrestricted',
          })) as { ipv4?: string } | undefined;
          if (made?.ipv4) addresses[name] = made.ipv4;
          await step(`set up SSH ${name}`, 'pixels.setupSsh', { server: 'sim', name, confirm: true });
          await step(`open in sandbox ${name} (SSH config)`, 'pixels.openFolderInSandbox', {
            server: 'sim',
            name,
            path: '/root',
            newWindow: true,
            requireRemoteSsh: false,
          });
          await step(`checkpoint ${name}@c`, 'pixels.createCheckpoint', { server: 'sim', name, label: 'c' });
          await step(`checkpoint shared@${name}`, 'pixels.createCheckpoint', {
            server: 'sim',
            name: 'shared',
            label: name,
          });
          // Restored while stopped: the egress re-check of a running one goes over SSH (no sshd in the simulator).
          await step(`stop ${name}`, 'pixels.stop', { server: 'sim', name });
          await step(`restore ${name}@c`, 'pixels.restoreCheckpoint', {
            server: 'sim',
            name,
            label: 'c',
            confirm: true,
          });
        })(),
        (async () => {
          await step(`lab checkpoint ${labSource}@${name}`, 'pixels.createCheckpoint', {
            server: 'lab',
            name: labSource,
            label: name,
          });
          await step(`lab clone ${labSource}@${name}`, 'pixels.clone', {
            server: 'lab',
            name: labSource,
            label: name,
            newName: `${labPrefix}-${name}`,
          });
        })(),
      ]);
    }
    writeFileSync(resultFile, JSON.stringify({ done, failed, addresses }));
  });
});
