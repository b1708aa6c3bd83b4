// SshConfigWriter: a property test over many generated user configs (their bytes outside our block never
// change), damaged markers, modes, concurrent writers in separate processes, atomicity, and `ssh -G`.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, promises as fs, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ValidationError } from '../../src/core/errors';
import { BEGIN_MARKER, END_MARKER, SshConfigWriter, type SshHostEntry } from '../../src/ssh/ssh-config';

const SSH = '/usr/bin/ssh';

/** Small deterministic PRNG (mulberry32) so a failing case can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

const GLOBALS = [
  'ServerAliveInterval 30',
  'AddKeysToAgent yes',
  'ForwardAgent no',
  'Compression yes',
  'ConnectTimeout 5',
];
const HOST_LINES = [
  'HostName 192.0.2.7',
  'User alice',
  'Port 2222',
  'IdentityFile ~/.ssh/id_other',
  'ForwardX11 no',
  'ProxyJump none',
];
const HEADERS = [
  'Host *',
  'Host px-*',
  'Host work',
  'Host a b c',
  'Host !bastion *',
  'Match host *.example.com',
  'Match all',
  'Host=eq',
];
const COMMENTS = ['# my config', '#', '   # indented comment', '# ünïcödé ✓', '#\tTab'];

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A random user config, as bytes (may include a latin1 byte that is not valid UTF-8). */
function randomConfig(r: () => number, withOurBlock: boolean): Buffer {
  const lines: string[] = [];
  const count = Math.floor(r() * 25);
  let inBlock = false;
  for (let i = 0; i < count; i++) {
    const kind = r();
    const trailing = r() < 0.2 ? pick(r, [' ', '\t', '  ']) : '';
    if (kind < 0.15) lines.push(pick(r, COMMENTS) + trailing);
    else if (kind < 0.25) lines.push(pick(r, ['', ' ', '\t']));
    else if (kind < 0.35 && !inBlock) lines.push(pick(r, GLOBALS) + trailing);
    else if (kind < 0.5) {
      lines.push(pick(r, HEADERS) + trailing);
      inBlock = true;
    } else if (kind < 0.55) lines.push('Include ~/.ssh/does-not-exist.d/*');
    else lines.push((inBlock ? pick(r, ['  ', '\t', '    ']) : '') + pick(r, HOST_LINES) + trailing);
  }
  if (withOurBlock) {
    const at = Math.floor(r() * (lines.length + 1));
    const stale = pick(r, ['Include "/old/path/config"', '', 'Include /x\nHost junk-we-wrote\n  User z']);
    lines.splice(at, 0, BEGIN_MARKER, ...(stale ? stale.split('\n') : []), END_MARKER);
  }
  const eol = r() < 0.4 ? '\r\n' : '\n';
  let text = lines.join(eol);
  if (lines.length && r() < 0.7) text += eol; // sometimes no final newline
  const bytes = Buffer.from(text, 'utf8');
  // Now and then a stray latin1 byte (a file saved in another encoding) inside a comment.
  const withLatin1 =
    r() < 0.15 ? Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from(eol), bytes]) : bytes;
  return r() < 0.05 ? Buffer.concat([BOM, withLatin1]) : withLatin1;
}

/** The file with our block cut out: from the start of the BEGIN line to the end of the END line (with its line break). */
function outsideBlock(data: Buffer): Buffer {
  const bom = data.subarray(0, 3).equals(BOM) ? 3 : 0;
  const text = data.subarray(bom).toString('latin1');
  let offset = bom;
  let begin = -1;
  for (const line of text.split('\n')) {
    const next = offset + line.length + 1;
    const content = line.replace(/\r$/, '').trim();
    if (begin < 0 && content.startsWith('# --- BEGIN PIXELS')) begin = offset;
    else if (begin >= 0 && content === END_MARKER) {
      return Buffer.concat([data.subarray(0, begin), data.subarray(Math.min(next, data.length))]);
    }
    offset = next;
  }
  return data;
}

function entry(alias: string, dir: string, n = 1): SshHostEntry {
  return {
    alias,
    hostName: `10.0.${n % 250}.${(n * 7) % 250}`,
    user: 'pixel',
    port: 22 + (n % 3),
    identityFile: join(dir, 'keys', 'id_ed25519'),
    knownHostsFile: join(dir, 'pixels known_hosts'),
  };
}

function sshG(file: string, alias: string): Promise<Record<string, string>> {
  return new Promise((resolvePromise, reject) => {
    execFile(SSH, ['-G', '-F', file, alias], (err, stdout, stderr) => {
      if (err) return reject(new Error(stderr || err.message));
      const out: Record<string, string> = {};
      for (const line of stdout.split('\n')) {
        const i = line.indexOf(' ');
        if (i > 0 && out[line.slice(0, i)] === undefined) out[line.slice(0, i)] = line.slice(i + 1);
      }
      resolvePromise(out);
    });
  });
}

describe('SshConfigWriter', () => {
  let root: string;
  before(async () => {
    if (!existsSync(SSH))
      throw new Error(`OpenSSH client not found at ${SSH}: apt-get install -y openssh-client`);
    root = await fs.mkdtemp(join(tmpdir(), 'pixels-sshcfg-'));
  });
  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('never changes a byte outside its block, over 300 generated user configs', async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const dir = join(root, `prop-${seed}`);
      await fs.mkdir(dir, { recursive: true });
      const configPath = join(dir, 'config');
      const original = randomConfig(r, r() < 0.3);
      await fs.writeFile(configPath, original);
      const writer = new SshConfigWriter({
        configPath,
        hostsPath: join(dir, 'pixels', 'config'),
        sshBinary: false,
      });
      const context = `seed ${seed}:\n${original.toString('latin1')}`;

      await writer.upsertHost(entry('px-one', dir, seed));
      const afterUpsert = await fs.readFile(configPath);
      assert.ok(outsideBlock(afterUpsert).equals(outsideBlock(original)), context);
      const text = afterUpsert.toString('latin1');
      assert.equal((text.match(/# --- BEGIN PIXELS/g) ?? []).length, 1, context);
      assert.ok(text.includes(`Include ${join(dir, 'pixels', 'config')}`), context);
      if (!original.includes('# --- BEGIN PIXELS')) {
        // New block: at the very top, in the file's own line endings, the rest byte for byte.
        const eol =
          original.includes('\r\n') &&
          original.toString().split('\r\n').length * 2 > original.toString().split('\n').length
            ? '\r\n'
            : '\n';
        const block = Buffer.from(
          [BEGIN_MARKER, `Include ${join(dir, 'pixels', 'config')}`, END_MARKER, ''].join(eol),
        );
        const bom = original.subarray(0, 3).equals(BOM) ? 3 : 0;
        assert.ok(afterUpsert.subarray(0, bom).equals(original.subarray(0, bom)), context);
        assert.ok(afterUpsert.subarray(bom, bom + block.length).equals(block), context);
        assert.ok(afterUpsert.subarray(bom + block.length).equals(original.subarray(bom)), context);
      }

      await writer.upsertHost(entry('px-two', dir, seed + 1));
      await writer.upsertHost(entry('px-one', dir, seed + 2)); // replace
      const afterMore = await fs.readFile(configPath);
      assert.ok(afterMore.equals(afterUpsert), `${context}\n(the block was already right: no rewrite)`);
      assert.deepEqual(
        (await writer.hosts()).map((h) => [h.alias, h.hostName]),
        [
          ['px-one', entry('px-one', dir, seed + 2).hostName],
          ['px-two', entry('px-two', dir, seed + 1).hostName],
        ],
      );

      // Entries read back exactly as written (paths with spaces survive the round trip).
      assert.deepEqual((await writer.hosts())[1], entry('px-two', dir, seed + 1));

      await writer.removeHost('px-one');
      assert.ok((await fs.readFile(configPath)).equals(afterUpsert), context);
      assert.deepEqual(
        (await writer.hosts()).map((h) => h.alias),
        ['px-two'],
      );

      await writer.removeInclude();
      assert.ok((await fs.readFile(configPath)).equals(outsideBlock(original)), context);
    }
  });

  it('ssh -G agrees with what was intended, whatever the user config says', async () => {
    for (let seed = 1000; seed < 1040; seed++) {
      const r = rng(seed);
      const dir = join(root, `sshg-${seed}`);
      await fs.mkdir(dir, { recursive: true });
      const configPath = join(dir, 'config');
      // OpenSSH rejects a file that starts with a byte order mark, so those are left out here.
      const config = randomConfig(r, false);
      await fs.writeFile(configPath, config.subarray(0, 3).equals(BOM) ? config.subarray(3) : config);
      const writer = new SshConfigWriter({
        configPath,
        hostsPath: join(dir, 'pixels', 'config'),
        sshBinary: SSH,
      });
      const wanted = entry('px-dev', dir, seed);
      const result = await writer.upsertHost(wanted);
      assert.deepEqual(result.warnings, [], `seed ${seed}`);
      const g = await sshG(configPath, 'px-dev');
      assert.equal(g.hostname, wanted.hostName);
      assert.equal(g.user, wanted.user);
      assert.equal(g.port, String(wanted.port));
      assert.equal(g.identityfile, wanted.identityFile);
      assert.equal(g.userknownhostsfile, wanted.knownHostsFile);
      assert.equal(g.stricthostkeychecking, 'true');
      assert.equal(g.identitiesonly, 'yes');
    }
  });

  it('a sandbox behind a jump host: ProxyJump to our jump entry (HostKeyAlias), read back, ssh -G agrees', async () => {
    for (let seed = 2000; seed < 2010; seed++) {
      const r = rng(seed);
      const dir = join(root, `jump-${seed}`);
      await fs.mkdir(dir, { recursive: true });
      const configPath = join(dir, 'config');
      const config = randomConfig(r, false);
      await fs.writeFile(configPath, config.subarray(0, 3).equals(BOM) ? config.subarray(3) : config);
      const writer = new SshConfigWriter({
        configPath,
        hostsPath: join(dir, 'pixels', 'config'),
        sshBinary: SSH,
      });
      const jump: SshHostEntry = {
        ...entry('px-jump.nas', dir, seed),
        hostName: 'nas.lan',
        user: 'truenas_admin',
        hostKeyAlias: 'px-jump.nas',
      };
      const sandbox: SshHostEntry = { ...entry('px-dev.nas', dir, seed), proxyJump: 'px-jump.nas' };
      assert.deepEqual((await writer.upsertHost(jump)).warnings, [], `seed ${seed}`);
      assert.deepEqual((await writer.upsertHost(sandbox)).warnings, [], `seed ${seed}`);
      const g = await sshG(configPath, 'px-dev.nas');
      assert.equal(g.proxyjump, 'px-jump.nas');
      assert.equal(g.hostname, sandbox.hostName);
      assert.equal(g.stricthostkeychecking, 'true');
      const j = await sshG(configPath, 'px-jump.nas');
      assert.equal(j.hostkeyalias, 'px-jump.nas');
      assert.equal(j.user, 'truenas_admin');
      assert.equal(j.userknownhostsfile, jump.knownHostsFile);
      assert.equal(j.stricthostkeychecking, 'true');
      // Read back as written (followAddresses rewrites entries from what it reads).
      const back = new Map((await writer.hosts()).map((e) => [e.alias, e]));
      assert.equal(back.get('px-dev.nas')?.proxyJump, 'px-jump.nas');
      assert.equal(back.get('px-jump.nas')?.hostKeyAlias, 'px-jump.nas');
      assert.equal(back.get('px-jump.nas')?.proxyJump, undefined);
    }
  });

  it('refuses a bad ProxyJump or HostKeyAlias, and a host that jumps through itself', async () => {
    const writer = new SshConfigWriter({
      configPath: join(root, 'bad-jump', 'config'),
      hostsPath: join(root, 'bad-jump', 'pixels', 'config'),
      sshBinary: false,
    });
    const base = entry('px-dev', root);
    for (const bad of [
      { ...base, proxyJump: 'a b' },
      { ...base, proxyJump: 'user@host:22' },
      { ...base, hostKeyAlias: 'x\nHost *' },
      { ...base, proxyJump: 'px-dev' },
    ])
      await assert.rejects(writer.upsertHost(bad), ValidationError);
    assert.equal(existsSync(join(root, 'bad-jump', 'pixels', 'config')), false);
  });

  it('a user ProxyJump for our hosts cannot override ours (our block comes first)', async () => {
    const dir = join(root, 'jump-override');
    await fs.mkdir(dir, { recursive: true });
    const configPath = join(dir, 'config');
    await fs.writeFile(configPath, 'Host px-*\n  ProxyJump bastion\n');
    const writer = new SshConfigWriter({
      configPath,
      hostsPath: join(dir, 'pixels', 'config'),
      sshBinary: SSH,
    });
    // Our block goes on top, so ours wins: no warning.
    const { warnings } = await writer.upsertHost({ ...entry('px-dev.nas', dir), proxyJump: 'px-jump.nas' });
    assert.deepEqual(warnings, []);
    assert.equal((await sshG(configPath, 'px-dev.nas')).proxyjump, 'px-jump.nas');
  });

  it('warns precisely when an earlier user block overrides our settings (ssh -G and library check)', async () => {
    for (const sshBinary of [SSH, false] as const) {
      const dir = join(root, `warn-${sshBinary ? 'ssh' : 'lib'}`);
      await fs.mkdir(dir, { recursive: true });
      const configPath = join(dir, 'config');
      // The user moved our block below their `Host *`.
      await fs.writeFile(
        configPath,
        `Host *\n  User other\n\n${BEGIN_MARKER}\nInclude /nowhere\n${END_MARKER}\nHost x\n  Port 1\n`,
      );
      const writer = new SshConfigWriter({ configPath, hostsPath: join(dir, 'pixels', 'config'), sshBinary });
      const { warnings } = await writer.upsertHost(entry('px-dev', dir));
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /"px-dev".*User other instead of pixel.*"Host \*" block/);
      // A global option before the block is named too.
      await fs.writeFile(
        configPath,
        `StrictHostKeyChecking no\n${BEGIN_MARKER}\nInclude /nowhere\n${END_MARKER}\n`,
      );
      const second = await writer.upsertHost(entry('px-dev', dir));
      assert.equal(second.warnings.length, 1, second.warnings.join('\n'));
      assert.match(
        second.warnings[0]!,
        /StrictHostKeyChecking no instead of yes.*global line "StrictHostKeyChecking no"/,
      );
    }
  });

  it('refuses damaged markers and leaves every file untouched', async () => {
    const damaged = {
      'only BEGIN': `Host a\n${BEGIN_MARKER}\nInclude /x\n`,
      'only END': `Host a\nInclude /x\n${END_MARKER}\n`,
      'two BEGINs': `${BEGIN_MARKER}\n${BEGIN_MARKER}\nInclude /x\n${END_MARKER}\n`,
      'two blocks': `${BEGIN_MARKER}\n${END_MARKER}\n${BEGIN_MARKER}\n${END_MARKER}\n`,
      'END before BEGIN': `${END_MARKER}\nHost a\n${BEGIN_MARKER}\n`,
    };
    for (const [name, content] of Object.entries(damaged)) {
      const dir = join(root, `damaged-${name.replace(/ /g, '-')}`);
      await fs.mkdir(dir, { recursive: true });
      const configPath = join(dir, 'config');
      const hostsPath = join(dir, 'pixels', 'config');
      await fs.writeFile(configPath, content);
      const before = statSync(configPath);
      const writer = new SshConfigWriter({ configPath, hostsPath, sshBinary: false });
      await assert.rejects(writer.upsertHost(entry('px-dev', dir)), (err: unknown) => {
        assert.ok(err instanceof ValidationError, `${name}: ${String(err)}`);
        assert.match(err.message, /marker/);
        assert.match(err.message, /Nothing was written/);
        return true;
      });
      await assert.rejects(writer.removeInclude(), ValidationError);
      assert.equal(await fs.readFile(configPath, 'utf8'), content, name);
      assert.equal(statSync(configPath).mtimeMs, before.mtimeMs, name);
      assert.equal(existsSync(hostsPath), false, `${name}: our hosts file must not be written either`);
      assert.deepEqual(
        (await fs.readdir(dir)).sort(),
        ['config', 'pixels'].filter((f) => existsSync(join(dir, f))).sort(),
      );
    }
  });

  it('keeps the file mode; a new file is 0600 in a 0700 folder; symlinks stay links', async () => {
    const dir = join(root, 'modes');
    await fs.mkdir(dir, { recursive: true });
    const existing = join(dir, 'config');
    await fs.writeFile(existing, 'Host a\n', { mode: 0o644 });
    await fs.chmod(existing, 0o644);
    await new SshConfigWriter({
      configPath: existing,
      hostsPath: join(dir, 'p', 'config'),
      sshBinary: false,
    }).upsertHost(entry('px-m', dir));
    assert.equal(statSync(existing).mode & 0o777, 0o644);

    const fresh = join(dir, 'new-home', '.ssh', 'config');
    const hostsPath = join(dir, 'new-home', '.ssh', 'pixels', 'config');
    await new SshConfigWriter({ configPath: fresh, hostsPath, sshBinary: false }).upsertHost(
      entry('px-m', dir),
    );
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'new-home', '.ssh')).mode & 0o777, 0o700);
    assert.equal(statSync(hostsPath).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'new-home', '.ssh', 'pixels')).mode & 0o777, 0o700);

    // A dotfile manager's symlink: the target is updated, the link stays.
    const real = join(dir, 'dotfiles-config');
    await fs.writeFile(real, 'Host dot\n');
    const link = join(dir, 'linked-config');
    await fs.symlink(real, link);
    await new SshConfigWriter({
      configPath: link,
      hostsPath: join(dir, 'p2', 'config'),
      sshBinary: false,
    }).upsertHost(entry('px-m', dir));
    assert.ok((await fs.lstat(link)).isSymbolicLink());
    assert.match(await fs.readFile(real, 'utf8'), /BEGIN PIXELS[\s\S]*Host dot\n$/);
  });

  it('rejects entries that would inject config lines', async () => {
    const dir = join(root, 'inject');
    const writer = new SshConfigWriter({
      configPath: join(dir, 'config'),
      hostsPath: join(dir, 'p', 'config'),
      sshBinary: false,
    });
    await assert.rejects(
      writer.upsertHost({ ...entry('px-x', dir), alias: 'px-x\nHost *' }),
      ValidationError,
    );
    await assert.rejects(writer.upsertHost({ ...entry('px-x', dir), alias: 'px-*' }), ValidationError);
    await assert.rejects(
      writer.upsertHost({ ...entry('px-x', dir), hostName: '1.2.3.4\n  ProxyCommand x' }),
      ValidationError,
    );
    await assert.rejects(writer.upsertHost({ ...entry('px-x', dir), identityFile: 'a"b' }), ValidationError);
    await assert.rejects(writer.upsertHost({ ...entry('px-x', dir), port: 70000 }), ValidationError);
    assert.equal(existsSync(join(dir, 'config')), false);
  });

  it('survives 20 writers in separate processes at once; readers never see a partial file', async () => {
    const dir = join(root, 'concurrent');
    await fs.mkdir(dir, { recursive: true });
    const configPath = join(dir, 'config');
    const hostsPath = join(dir, 'pixels', 'config');
    const userPart = 'Host mine\n  User me\n' + '# padding so a torn write would show\n'.repeat(2000);
    await fs.writeFile(configPath, userPart);
    const moduleUrl = new URL(`file://${resolve('src/ssh/ssh-config.ts')}`).href;
    const workers = Array.from({ length: 20 }, (_, i) => {
      const code = `
        const m = await import(${JSON.stringify(moduleUrl)});
        const SshConfigWriter = m.SshConfigWriter ?? m.default.SshConfigWriter;
        const w = new SshConfigWriter({ configPath: ${JSON.stringify(configPath)}, hostsPath: ${JSON.stringify(hostsPath)}, sshBinary: false });
        for (let k = 0; k < 3; k++) {
          await w.upsertHost(${JSON.stringify(entry(`px-w${i}`, dir, i))});
        }`;
      return new Promise<number>((done) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', code], {
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        child.on('close', (c) => done(c ?? 1));
      });
    });
    let reads = 0;
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const config = await fs.readFile(configPath, 'utf8');
        assert.ok(config.endsWith(userPart), 'the user part is always whole');
        assert.ok(config === userPart || config.startsWith(BEGIN_MARKER), 'never a half-written block');
        const hosts = await fs.readFile(hostsPath, 'utf8').catch(() => '');
        if (hosts) assert.match(hosts, /^# Managed by Pixels[\s\S]*(IdentitiesOnly yes\n|\n)$/);
        for (const block of hosts.split('\nHost ').slice(1)) assert.match(block, /IdentitiesOnly yes\n/);
        reads++;
      }
    })();
    const codes = await Promise.all(workers);
    stop = true;
    await reader;
    assert.deepEqual(codes, Array(20).fill(0));
    assert.ok(reads > 10, `reader ran ${reads} times`);
    const writer = new SshConfigWriter({ configPath, hostsPath, sshBinary: false });
    const aliases = (await writer.hosts()).map((h) => h.alias).sort();
    assert.deepEqual(aliases, Array.from({ length: 20 }, (_, i) => `px-w${i}`).sort());
    const config = await fs.readFile(configPath, 'utf8');
    assert.equal((config.match(/BEGIN PIXELS/g) ?? []).length, 1);
    assert.ok(config.endsWith(userPart));
    const leftovers = (await fs.readdir(dir))
      .concat(await fs.readdir(join(dir, 'pixels')))
      .filter((f) => /\.tmp$|\.lock/.test(f));
    assert.deepEqual(leftovers, [], 'no temp or lock files left behind');
    // Every host resolves with OpenSSH.
    for (const i of [0, 7, 19])
      assert.equal((await sshG(configPath, `px-w${i}`)).hostname, entry('x', dir, i).hostName);
  });

  it('takes over a lock left by a crashed writer', async () => {
    const dir = join(root, 'stale');
    await fs.mkdir(join(dir, 'pixels'), { recursive: true });
    const lock = join(dir, 'pixels', '.config.lock');
    await fs.writeFile(lock, '99999 crashed\n');
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(lock, old, old);
    const writer = new SshConfigWriter({
      configPath: join(dir, 'config'),
      hostsPath: join(dir, 'pixels', 'config'),
      sshBinary: false,
      lock: { staleMs: 5000 },
    });
    await writer.upsertHost(entry('px-s', dir));
    assert.equal(existsSync(lock), false);
    // A fresh lock held by someone else: we wait, then time out with a clear error.
    await fs.writeFile(lock, 'busy\n');
    const busy = new SshConfigWriter({
      configPath: join(dir, 'config'),
      hostsPath: join(dir, 'pixels', 'config'),
      sshBinary: false,
      lock: { timeoutMs: 300 },
    });
    await assert.rejects(busy.upsertHost(entry('px-t', dir)), /Timed out waiting for the lock/);
    await fs.rm(lock);
  });
});
