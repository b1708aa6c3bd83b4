// The secret-canary scanner is not a no-op: a canary planted in each kind of place it watches (a log line, a file
// left in the temp folder, a process's environment, a process's arguments, a VS Code state database row other
// than our SecretStorage row, user settings, the workbench's localStorage as UTF-16) is reported, with the place;
// what may legitimately hold a canary (the API key as the value of our SecretStorage row) is not.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CanaryScanner } from './canary-scanner';

const tag = randomBytes(8).toString('hex');
const CANARIES = {
  'API key': `1-CANARYAPIKEY${tag}`,
  'private key': `b3BlbnNzaC1rZXktdjEAAAAA${tag}`,
  '[env] value': `canaryenv${tag}`,
};
const profile = mkdtempSync(join(tmpdir(), 'pixels-canary-planted-'));
const children: ChildProcess[] = [];

after(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(profile, { recursive: true, force: true });
});

function sqlite(db: string, sql: string): void {
  execFileSync('sqlite3', [db, sql]);
}

/** A process (no children) that lives until the test ends, started with `argv` and `env`; resolves once exec'd. */
async function plantProcess(argv: string[], env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', ...argv], {
    env,
    stdio: 'ignore',
  });
  children.push(child);
  const deadline = Date.now() + 10_000;
  while (!readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').includes('setTimeout')) {
    assert.ok(Date.now() < deadline, 'the planted process did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

describe('the secret-canary scanner finds planted leaks', () => {
  test('a canary in each kind of place is reported with where it was; an allowed one is not', async () => {
    const scanner = new CanaryScanner(CANARIES);
    // Planted after the scanner started: a new temp entry, as the product would leave one.
    const leftover = mkdtempSync(join(tmpdir(), 'pixels-canary-leftover-'));
    try {
      const logFile = join(profile, 'logs', '20261203T120000', 'exthost1', 'output_logging', '1-Pixels.log');
      mkdirSync(join(logFile, '..'), { recursive: true });
      writeFileSync(logFile, `2026-12-03 12:00:00.000 [info] connect: key ${CANARIES['API key']} refused\n`);
      const settings = join(profile, 'User', 'settings.json');
      mkdirSync(join(profile, 'User'), { recursive: true });
      writeFileSync(settings, JSON.stringify({ 'pixels.ssh.identityFile': CANARIES['private key'] }));
      const db = join(profile, 'User', 'globalStorage', 'state.vscdb');
      mkdirSync(join(db, '..'), { recursive: true });
      sqlite(db, 'CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)');
      const ourSecret = 'secret://{"extensionId":"pixels-dev.pixels-vscode","key":"pixels.apiKey.nas"}';
      sqlite(db, `INSERT INTO ItemTable VALUES ('${ourSecret}', '${CANARIES['API key']}')`);
      sqlite(
        db,
        `INSERT INTO ItemTable VALUES ('pixels-dev.pixels-vscode', '{"cache":"${CANARIES['API key']}"}')`,
      );
      sqlite(db, `INSERT INTO ItemTable VALUES ('workbench.view', '{}')`);
      const localStorage = join(profile, 'chromium', 'Default', 'Local Storage', 'leveldb', '000003.log');
      mkdirSync(join(localStorage, '..'), { recursive: true });
      writeFileSync(
        localStorage,
        Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(`_x\0${CANARIES['[env] value']}`, 'utf16le')]),
      );
      writeFileSync(join(leftover, 'askpass.sh'), `#!/bin/sh\necho '${CANARIES['private key']}'\n`);
      const withEnv = await plantProcess([], { ...process.env, PX_CANARY: CANARIES['[env] value'] });
      const withArg = await plantProcess([`token=${CANARIES['API key']}`], process.env);
      const clean = await plantProcess(['nothing-here'], { PATH: process.env.PATH });

      scanner.sample();
      scanner.checkProcesses();
      scanner.check('an error message', `Login refused for key ${CANARIES['API key'].slice(0, 6)}…`);
      scanner.check('an error message with the key', `Login refused for key ${CANARIES['API key']}`);
      scanner.checkFiles('VS Code profile', profile);
      for (const entry of scanner.newTempEntries()) if (entry === leftover) scanner.checkFiles('temp', entry);

      const found = (name: string, place: string) =>
        scanner.leaks.filter((l) => l.startsWith(`${name} in ${place}`));
      const expect = (name: string, place: string) =>
        assert.equal(found(name, place).length, 1, `${name} in ${place}:\n${scanner.leaks.join('\n')}`);
      expect('API key', `VS Code profile ${logFile}`);
      expect('private key', `VS Code profile ${settings}`);
      expect('API key', `VS Code profile ${db}, row "pixels-dev.pixels-vscode"`);
      expect('[env] value', `VS Code profile ${localStorage}`);
      expect('private key', `temp ${join(leftover, 'askpass.sh')}`);
      expect('[env] value', `the environment of process ${withEnv.pid} (node, this machine)`);
      expect('API key', `the arguments of process ${withArg.pid} (node, this machine)`);
      expect('API key', 'an error message with the key');
      assert.equal(scanner.leaks.length, 8, scanner.leaks.join('\n'));
      // Checked, and clean: the allowed row, the other row, the clean process, the shortened key in a message.
      for (const place of [
        `VS Code profile ${db}, row "${ourSecret}"`,
        `VS Code profile ${db}, row "workbench.view"`,
        `the environment of process ${clean.pid} (node, this machine)`,
        'an error message',
      ])
        assert.ok(scanner.places.includes(place), `${place} was checked`);
      assert.deepEqual(scanner.expected, [`API key in VS Code profile ${db}, row "${ourSecret}"`]);
      // The leak report says what was around the canary.
      assert.match(found('API key', `the arguments of process ${withArg.pid}`)[0], / token=1-CANARYAPIKEY/);
    } finally {
      rmSync(leftover, { recursive: true, force: true });
    }
  });
});
