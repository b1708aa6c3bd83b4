// Generation of the provisioning steps and the [env] handling, checked with the real bash (syntax and quoting),
// and the runner's reporting over an executor at the boundary.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CancelledError, TimeoutError, ValidationError } from '../../src/core/errors';
import { egressGuestFiles } from '../../src/guest/egress/guest-files';
import { envScript } from '../../src/guest/env';
import {
  buildPolicy,
  expandEnv,
  provision,
  provisionSteps,
  ProvisionStepError,
  ProvisionTracker,
  resolveEnv,
  runProvision,
  type Executor,
  type ProvisionEvent,
  type ProvisionOptions,
} from '../../src/guest/index';
import { STOP_STEPS_SCRIPT, wrapStep } from '../../src/guest/provision/runner';
import { heredocDelimiter, shq, writeFileScript } from '../../src/guest/shell';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk3cE3x3cJ3Qb9yJ3dFqR3WJb0n8mC5eVbXc4f6Zz1a me@laptop';
const options = (over: Partial<ProvisionOptions> = {}): ProvisionOptions => ({
  userPublicKeys: [KEY],
  devtools: true,
  egress: buildPolicy('agent', ['example.com']),
  setupScript: { content: 'echo hi' },
  ...over,
});

function bashSyntaxOk(script: string): void {
  const r = spawnSync('bash', ['-n'], { input: script });
  assert.equal(r.status, 0, `bash -n: ${r.stderr.toString()}`);
}

test('shq survives real bash for awkward values', () => {
  for (const value of ["it's", '$(id)', '`id`', 'a b', '"q"', '\\', 'new\nline', '', '-n', '*']) {
    const out = execFileSync('bash', ['-c', `printf '%s' ${shq(value)}`]).toString();
    assert.equal(out, value);
  }
});

test('writeFileScript writes content literally, with mode, atomically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-guest-'));
  try {
    const content = 'a $HOME `id` $(x)\nPIXELS_EOF_x\n\'"\n';
    const path = join(dir, 'sub', 'f.txt');
    execFileSync('bash', [
      '-c',
      writeFileScript({ path, content, mode: 0o640, uid: process.getuid!(), gid: process.getgid!() }),
    ]);
    assert.equal(readFileSync(path, 'utf8'), content);
    assert.equal(execFileSync('stat', ['-c', '%a', path]).toString().trim(), '640');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(heredocDelimiter('abc'), heredocDelimiter('abc'), 'stable for the same content');
});

test('the step list follows the options, in order; a restricted policy goes on first', () => {
  assert.deepEqual(
    provisionSteps(options()).map((s) => s.id),
    ['egress', 'user', 'packages', 'ssh', 'env', 'mise', 'tools', 'close-sources', 'setup'],
  );
  assert.deepEqual(
    provisionSteps(options({ devtools: false, setupScript: undefined })).map((s) => s.id),
    ['egress', 'user', 'packages', 'ssh', 'env', 'close-sources'],
  );
  assert.deepEqual(
    provisionSteps(options({ egress: buildPolicy('allowlist', ['example.com']) })).map((s) => s.id)[0],
    'egress',
  );
  // Unrestricted: nothing to open; the policy (and pixel's sudo) goes on last.
  assert.deepEqual(
    provisionSteps(options({ egress: buildPolicy('unrestricted') })).map((s) => s.id),
    ['user', 'packages', 'ssh', 'env', 'mise', 'tools', 'setup', 'egress'],
  );
});

test('the provisioning sources are allowed by name while provisioning runs, then closed', () => {
  const hostsOf = (body: string) =>
    /printf '%s\\n' (.*) >> "\$tmp"/
      .exec(body)![1]
      .split(' ')
      .map((h) => h.replace(/'/g, ''));
  const defaults = provisionSteps(options());
  const open = defaults[0];
  assert.equal(open.sources, 'open');
  assert.deepEqual(hostsOf(open.body), [
    'mise.run',
    'mise.jdx.dev',
    'mise-versions.jdx.dev',
    'github.com',
    'api.github.com',
    'objects.githubusercontent.com',
    'release-assets.githubusercontent.com',
    'registry.npmjs.org',
    'nodejs.org',
  ]);
  // Without an apt mirror the image's own apt hosts are added inside the sandbox.
  assert.match(open.body, /grep -oE 'https\?:\/\/\[\^\/\[:space:\]\]\+'/);
  assert.match(open.body, /echo "expires \$\(\( \$\(date \+%s\) \+ \d+ \)\)"/);
  assert.ok(
    open.body.indexOf('/usr/local/sbin/pixels-egress apply') > open.body.indexOf('egress-provisioning'),
  );
  const mirrors = provisionSteps(
    options({
      sources: {
        miseInstallerUrl: 'http://mirror.lan:8080/mise.sh',
        npmRegistry: 'https://NPM.mirror.lan/',
        nodeMirror: 'https://[2001:db8::5]/dist/',
        aptMirror: 'http://10.0.0.5/debian',
      },
    }),
  );
  assert.deepEqual(hostsOf(mirrors[0].body), ['10.0.0.5', 'mirror.lan', 'npm.mirror.lan', '2001:db8::5']);
  assert.doesNotMatch(mirrors[0].body, /grep -oE 'https/, 'the mirror replaces the image sources');
  const close = mirrors.find((s) => s.id === 'close-sources')!;
  assert.equal(close.sources, 'close');
  assert.match(close.body, /rm -f \/etc\/pixels\/egress-provisioning\n.*pixels-egress apply/);
  // Without dev tools only the apt mirror is opened.
  const noTools = provisionSteps(
    options({ devtools: false, sources: { aptMirror: 'http://deb.mirror.lan/debian' } }),
  );
  assert.deepEqual(hostsOf(noTools[0].body), ['deb.mirror.lan']);
  // A host the policy cannot name is refused before anything runs.
  assert.throws(
    () => provisionSteps(options({ sources: { npmRegistry: 'http://registry:4873/' } })),
    /npmRegistry: the host "registry" cannot be allowed by the egress policy/,
  );
});

test('runner: the provisioning sources open and close again only when something downloads', async () => {
  const steps = provisionSteps(options({ setupScript: undefined }));
  const hash = (id: string) => steps.find((s) => s.id === id)!.hash;
  const ran = async (doneIds: string[]) => {
    const seen: string[] = [];
    const exec: Executor = async (script) => {
      if (script.includes('for f in /var/lib/pixels/provision/*.done'))
        return { exitCode: 0, output: doneIds.map((id) => `${id} ${hash(id)}\n`).join('') };
      seen.push(/unit=pixels-provision-([a-z-]+)_/.exec(script)![1]);
      return { exitCode: 0, output: '' };
    };
    await runProvision(exec, steps);
    return seen;
  };
  const all = steps.map((s) => s.id);
  // Finished (or cloned) and nothing to download: no step runs, the sources stay closed.
  assert.deepEqual(await ran(all), []);
  // A clone whose host key changed: only ssh runs, without opening the sources.
  assert.deepEqual(await ran(all.filter((id) => id !== 'ssh')), ['ssh']);
  // A re-run after a failure in the tools step (the failure closed the sources): they open and close again.
  assert.deepEqual(await ran(['egress', 'user', 'packages', 'ssh', 'env', 'mise']), [
    'egress',
    'tools',
    'close-sources',
  ]);
  // Their scripts have no marker check of their own: the host decides.
  const wrapped = wrapStep(steps[0]);
  assert.doesNotMatch(wrapped, /already done/);
  assert.match(wrapStep(steps[1]), /already done/);
});

test('a failed provisioning closes the sources and says which policy is in force', async () => {
  const scripts: string[] = [];
  const exec =
    (closeOutput: { exitCode: number; output: string } | Error): Executor =>
    async (script, opts = {}) => {
      scripts.push(script);
      if (script.includes('for f in /var/lib/pixels/provision/*.done')) return { exitCode: 0, output: '' };
      if (script.includes('unit=pixels-provision-')) {
        const id = /unit=pixels-provision-([a-z-]+)_/.exec(script)![1];
        if (id === 'mise') opts.onOutput?.('curl: (22) 404\n');
        return { exitCode: id === 'mise' ? 22 : 0, output: '' };
      }
      if (closeOutput instanceof Error) throw closeOutput;
      return closeOutput;
    };
  const o = options({ egress: buildPolicy('allowlist', ['example.com']) });
  await assert.rejects(
    provision(
      exec({
        exitCode: 0,
        output: 'pixels-egress: mode allowlist\nmode=allowlist\nenforced=yes\nresolved=2\nprovisioning=0\n',
      }),
      o,
    ),
    (err) => {
      assert.ok(err instanceof ProvisionStepError);
      assert.equal(err.step, 'mise');
      assert.equal(
        err.message,
        'Provisioning step "Install mise" failed (exit code 22): curl: (22) 404 (the allowlist egress policy is in force; the provisioning sources were removed)',
      );
      return true;
    },
  );
  const close = scripts[scripts.length - 1];
  assert.ok(close.startsWith(STOP_STEPS_SCRIPT), 'what still runs of the steps is stopped first');
  assert.match(close, /rm -f \/etc\/pixels\/egress-provisioning/);
  assert.match(close, /pixels-egress status/);
  // The state is read back, not assumed: rules missing or sources still open are reported as such.
  await assert.rejects(
    provision(exec({ exitCode: 3, output: 'mode=allowlist\nenforced=no\nprovisioning=0\n' }), o),
    /the egress policy is NOT confirmed in force \(exit code 3/,
  );
  await assert.rejects(
    provision(exec(new TimeoutError('no answer')), o),
    /the egress policy could not be checked \(no answer\); the provisioning sources expire by themselves/,
  );
  // Unrestricted: nothing was opened, nothing to close.
  scripts.length = 0;
  await assert.rejects(
    provision(exec(new Error('must not be called')), options({ egress: buildPolicy('unrestricted') })),
    (err) => {
      assert.ok(err instanceof ProvisionStepError);
      assert.equal(err.egress, undefined);
      return true;
    },
  );
  assert.ok(!scripts.some((s) => s.includes('pixels-egress status')));
});

test('every generated script is valid bash, and step hashes are stable', () => {
  const a = provisionSteps(options({ environment: { A: 'x y' }, acceptEnv: ['TOKEN'] }));
  const b = provisionSteps(options({ environment: { A: 'x y' }, acceptEnv: ['TOKEN'] }));
  for (const step of a) {
    bashSyntaxOk(step.body);
    bashSyntaxOk(wrapStep(step));
  }
  for (const file of egressGuestFiles())
    if (file.content.startsWith('#!/bin/bash')) bashSyntaxOk(file.content);
  assert.deepEqual(
    a.map((s) => s.hash),
    b.map((s) => s.hash),
  );
  const changed = provisionSteps(options({ environment: { A: 'other' }, acceptEnv: ['TOKEN'] }));
  assert.deepEqual(
    a.filter((s, i) => s.hash !== changed[i].hash).map((s) => s.id),
    ['env'],
    'only the env step changes when the environment does',
  );
});

test('download locations are configurable and validated', () => {
  const steps = provisionSteps(
    options({
      sources: {
        miseInstallerUrl: 'http://mirror.lan:8080/mise.sh',
        npmRegistry: 'https://npm.mirror.lan/',
        nodeMirror: 'https://node.mirror.lan/dist/',
        aptMirror: 'http://deb.mirror.lan/debian',
      },
    }),
  );
  const all = steps.map((s) => s.body).join('\n');
  assert.match(all, /http:\/\/mirror\.lan:8080\/mise\.sh/);
  assert.match(all, /NPM_CONFIG_REGISTRY=https:\/\/npm\.mirror\.lan\//);
  assert.match(all, /MISE_NODE_MIRROR_URL=https:\/\/node\.mirror\.lan\/dist\//);
  assert.match(all, /'deb %s%s %s %s\\n' '' http:\/\/deb\.mirror\.lan\/debian "\$codename" main/);
  assert.doesNotMatch(all, /https:\/\/mise\.run/);
  assert.throws(
    () => provisionSteps(options({ sources: { miseInstallerUrl: 'ftp://x/y' } })),
    /only http and https/,
  );
  assert.throws(() => provisionSteps(options({ sources: { npmRegistry: 'https://u:p@x/' } })), /credentials/);
  assert.throws(() => provisionSteps(options({ sources: { aptMirror: 'not a url' } })), /not a URL/);
});

test('URLs reach the scripts only quoted (no command substitution)', () => {
  const url = 'http://mirror.lan/$(id)';
  const bodies = provisionSteps(
    options({
      sources: { miseInstallerUrl: url, npmRegistry: url, nodeMirror: url, aptMirror: url, aptTrusted: true },
    }),
  ).map((s) => s.body);
  const normalized = new URL(url).toString();
  let seen = 0;
  for (const body of bodies) {
    for (let i = body.indexOf(normalized); i !== -1; i = body.indexOf(normalized, i + 1)) {
      seen++;
      assert.ok(
        ["'", '='].includes(body[i - 1]) || body.slice(i - 9, i) === 'registry=',
        body.slice(i - 40, i + 40),
      );
    }
  }
  assert.ok(seen >= 5);
  assert.throws(
    () => provisionSteps(options({ sources: { aptTrusted: true } })),
    /only applies together with aptMirror/,
  );
});

test('user tools extend the defaults; a tool named twice keeps the last version', () => {
  const steps = provisionSteps(
    options({
      tools: [
        { name: 'node', version: 'lts' },
        { name: 'python', version: '3.12' },
        { name: 'node', version: '22' },
      ],
    }),
  );
  const mise = steps.find((s) => s.id === 'mise')!.body;
  assert.match(mise, /"node" = "22"\n"python" = "3.12"\n/);
  assert.doesNotMatch(mise, /"node" = "lts"/);
});

test('bad options are refused before anything runs', () => {
  assert.throws(() => provisionSteps(options({ userPublicKeys: [] })), /at least one SSH public key/);
  assert.throws(
    () => provisionSteps(options({ userPublicKeys: [`${KEY}\nssh-rsa AAAA evil`] })),
    ValidationError,
  );
  assert.throws(
    () => provisionSteps(options({ tools: [{ name: 'node; rm -rf /', version: 'lts' }] })),
    /not a valid mise tool/,
  );
  assert.throws(
    () => provisionSteps(options({ tools: [{ name: 'node', version: '$(id)' }] })),
    /not a valid version/,
  );
  assert.throws(() => provisionSteps(options({ packages: ['git', 'Bad Name'] })), /not a valid package name/);
  assert.throws(() => provisionSteps(options({ timeouts: { tools: 10 } })), /at least one second/);
  assert.throws(() => provisionSteps(options({ acceptEnv: ['A-B'] })), /not a valid variable name/);
  assert.throws(() => provisionSteps(options({ environment: { 'A B': 'x' } })), /variable name/);
  assert.throws(() => provisionSteps(options({ environment: { A: 'x\ny' } })), /line breaks/);
});

test('[env]: the three pixels forms, $VAR expansion, specific errors', () => {
  const host = { HOME: '/home/me', TOKEN: 'secret', EMPTY: '' };
  const env = resolveEnv(
    {
      EDITOR: 'vim',
      DATA: { value: '$HOME/data' },
      TOKEN: { forward: true },
      MISSING: { forward: true },
      SESSION: { value: '${HOME}/s', session_only: true },
    },
    host,
  );
  assert.deepEqual(env.image, { EDITOR: 'vim', DATA: '/home/me/data' });
  assert.deepEqual(env.session, { TOKEN: 'secret', SESSION: '/home/me/s' });
  assert.deepEqual(env.sessionKeys, ['MISSING', 'SESSION', 'TOKEN']);
  assert.equal(expandEnv('$NOPE-$HOME', host), '-/home/me');
  assert.throws(() => resolveEnv({ N: 3 }, host), /env "N": unsupported type/);
  assert.throws(() => resolveEnv({ '1X': 'a' }, host), /variable name/);
  assert.throws(() => resolveEnv({ X: { valu: 'a' } }, host), /unknown field "valu"/);
  assert.throws(() => resolveEnv({ X: 'a\nb' }, host), /line breaks/);
  assert.throws(() => resolveEnv({ X: 'say "hi"' }, host), /double quotes/);
});

test('[env]: the environment script keeps other lines of /etc/environment', () => {
  // Run the generated script against a scratch root by rewriting its absolute paths.
  const dir = mkdtempSync(join(tmpdir(), 'pixels-env-'));
  try {
    const script = envScript({ B: 'two words', A: "it's" })
      .replaceAll('/etc/environment', join(dir, 'environment'))
      .replaceAll('/etc/profile.d/pixels-env.sh', join(dir, 'profile.sh'));
    execFileSync('bash', ['-c', `printf 'PATH="/usr/bin"\\n' > ${dir}/environment`]);
    execFileSync('bash', ['-c', script]);
    execFileSync('bash', ['-c', script]); // idempotent: one block, not two
    const text = readFileSync(join(dir, 'environment'), 'utf8');
    assert.equal(text.match(/>>> pixels/g)?.length, 1);
    assert.match(text, /^PATH="\/usr\/bin"\n/);
    assert.match(text, /A="it's"\nB="two words"\n/);
    const out = execFileSync('bash', ['-c', `. ${dir}/profile.sh; printf '%s|%s' "$A" "$B"`]).toString();
    assert.equal(out, "it's|two words");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------------------------------------ runner
/** An executor at the boundary: answers the marker query, then plays scripted results per step. */
function scriptedExecutor(
  results: Record<string, { exitCode?: number; output?: string; error?: Error }>,
): Executor {
  return async (script, opts = {}) => {
    if (script.includes('for f in /var/lib/pixels/provision/*.done')) return { exitCode: 0, output: '' };
    const id = /unit=pixels-provision-([a-z-]+)_/.exec(script)?.[1] ?? '?';
    const r = results[id] ?? {};
    if (r.error) throw r.error;
    if (r.output) opts.onOutput?.(r.output);
    return { exitCode: r.exitCode ?? 0, output: r.output ?? '' };
  };
}

test('runner: events per step, log lines, failure with the tail; later steps stay pending', async () => {
  const steps = provisionSteps(options({ devtools: false, setupScript: undefined }));
  const events: ProvisionEvent[] = [];
  const exec = scriptedExecutor({
    user: { output: 'created user\n' },
    ssh: {
      exitCode: 1,
      output: Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n') + '\nfatal: no sshd',
    },
  });
  await assert.rejects(runProvision(exec, steps, { onEvent: (e) => events.push(e), tailLines: 5 }), (err) => {
    assert.ok(err instanceof ProvisionStepError);
    assert.equal(err.step, 'ssh');
    assert.equal(err.exitCode, 1);
    assert.deepEqual(err.logTail, ['line 36', 'line 37', 'line 38', 'line 39', 'fatal: no sshd']);
    assert.equal(err.message, 'Provisioning step "Set up SSH access" failed (exit code 1): fatal: no sshd');
    return true;
  });
  const seq = events
    .filter((e) => e.type === 'step')
    .map((e) => (e.type === 'step' ? `${e.id}:${e.state}` : ''));
  assert.deepEqual(seq.slice(6), [
    'egress:running',
    'egress:done',
    'user:running',
    'user:done',
    'packages:running',
    'packages:done',
    'ssh:running',
    'ssh:failed',
  ]);
  assert.ok(events.some((e) => e.type === 'log' && e.id === 'user' && e.line === 'created user'));
});

test('runner: exit 124 and a host-side timeout are reported as timeouts; cancel stops', async () => {
  const steps = provisionSteps(options({ devtools: false, setupScript: undefined }));
  await assert.rejects(runProvision(scriptedExecutor({ user: { exitCode: 124 } }), steps), (err) => {
    assert.ok(err instanceof ProvisionStepError && err.timedOut && err.kind === 'timeout');
    assert.match(err.message, /"Create user pixel" timed out/);
    return true;
  });
  await assert.rejects(
    runProvision(scriptedExecutor({ packages: { error: new TimeoutError('no answer') } }), steps),
    (err) => {
      assert.ok(err instanceof ProvisionStepError && err.timedOut && err.step === 'packages');
      return true;
    },
  );
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(runProvision(scriptedExecutor({}), steps, { signal: ac.signal }), CancelledError);
});

test('tracker: states, current step, percent, headline, bounded log', async () => {
  const steps = provisionSteps(
    options({ devtools: false, setupScript: undefined, egress: buildPolicy('unrestricted') }),
  );
  const tracker = new ProvisionTracker(3);
  const seen: string[] = [];
  const exec: Executor = async (script, opts = {}) => {
    if (script.includes('for f in /var/lib/pixels/provision/*.done'))
      return { exitCode: 0, output: `user ${steps[0].hash}\n` };
    seen.push(tracker.headline);
    opts.onOutput?.('a\nb\nc\nd\n');
    return { exitCode: script.includes('unit=pixels-provision-env_') ? 9 : 0, output: '' };
  };
  await assert.rejects(runProvision(exec, steps, { onEvent: tracker.onEvent }), ProvisionStepError);
  assert.deepEqual(seen, [
    'Install system packages (2/5)',
    'Set up SSH access (3/5)',
    'Write environment (4/5)',
  ]);
  assert.deepEqual(
    tracker.all.map((s) => `${s.id}:${s.state}${s.alreadyDone ? '(earlier)' : ''}`),
    ['user:done(earlier)', 'packages:done', 'ssh:done', 'env:failed', 'egress:pending'],
  );
  assert.equal(tracker.percent, 60);
  assert.equal(tracker.active, false);
  assert.equal(tracker.headline, 'Write environment failed');
  assert.deepEqual(tracker.all[1].log, ['b', 'c', 'd']);
});

test('the default tools are the agents plus ripgrep and fd (as pixels installs them); the setting still decides', () => {
  const mise = (o: ProvisionOptions) => provisionSteps(o).find((s) => s.id === 'mise')?.body ?? '';
  const byDefault = mise(options());
  for (const tool of ['"node" = "lts"', '"ripgrep" = "latest"', '"fd" = "latest"'])
    assert.ok(byDefault.includes(tool), tool);
  const chosen = mise(options({ tools: [{ name: 'node', version: '22' }] }));
  assert.ok(chosen.includes('"node" = "22"'));
  assert.ok(!chosen.includes('ripgrep') && !chosen.includes('"fd"'), 'a tools setting replaces the default');
});
