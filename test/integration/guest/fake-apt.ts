// A tiny unsigned Debian repository (one suite, one component) with real .deb packages built by dpkg-deb, served
// by the test "internet" as the sandbox's apt mirror.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Internet } from './internet';

function buildDeb(dir: string, name: string, version: string): Buffer {
  const root = join(dir, name);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN/control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Pixels tests <tests@pixels.invalid>\nDescription: test package ${name}\n`,
  );
  writeFileSync(join(root, `usr/bin/${name}`), `#!/bin/sh\necho "${name} ${version} works"\n`);
  chmodSync(join(root, `usr/bin/${name}`), 0o755);
  const out = join(dir, `${name}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, out], { stdio: 'ignore' });
  return readFileSync(out);
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/** Serves the repository under `prefix` (e.g. "/debian") for `suite`; returns the package names. */
export function serveFakeAptRepo(net: Internet, prefix: string, suite: string, packages: string[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-apt-'));
  try {
    const stanzas: string[] = [];
    for (const name of packages) {
      const deb = buildDeb(dir, name, '1.0');
      const filename = `pool/main/${name}_1.0_all.deb`;
      net.route(`${prefix}/${filename}`, deb);
      stanzas.push(
        [
          `Package: ${name}`,
          'Version: 1.0',
          'Architecture: all',
          'Maintainer: Pixels tests <tests@pixels.invalid>',
          `Filename: ${filename}`,
          `Size: ${deb.length}`,
          `MD5sum: ${md5(deb)}`,
          `SHA256: ${sha256(deb)}`,
          `Description: test package ${name}`,
        ].join('\n'),
      );
    }
    const index = `${stanzas.join('\n\n')}\n`;
    const release = [
      'Origin: pixels-tests',
      'Label: pixels-tests',
      `Suite: ${suite}`,
      `Codename: ${suite}`,
      `Date: ${new Date().toUTCString()}`,
      'Architectures: amd64 all',
      'Components: main',
      'SHA256:',
      ...['amd64', 'all'].map(
        (arch) => ` ${sha256(index)} ${Buffer.byteLength(index)} main/binary-${arch}/Packages`,
      ),
      '',
    ].join('\n');
    for (const arch of ['amd64', 'all'])
      net.route(`${prefix}/dists/${suite}/main/binary-${arch}/Packages`, index);
    net.route(`${prefix}/dists/${suite}/Release`, release);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
