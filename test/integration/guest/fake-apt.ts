// A tiny unsigned Debian repository (one suite, one component) with real .deb packages built by dpkg-deb, served
// by the test "internet" as the sandbox's apt mirror.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Internet } from './internet';

/** A package: a name (a script /usr/bin/<name> that says it works), or files of our own with their modes. */
export type FakePackage = string | { name: string; files: Record<string, { content: Buffer; mode: number }> };

function buildDeb(dir: string, pkg: FakePackage, version: string): Buffer {
  const name = typeof pkg === 'string' ? pkg : pkg.name;
  const files =
    typeof pkg === 'string'
      ? {
          [`/usr/bin/${name}`]: {
            content: Buffer.from(`#!/bin/sh\necho "${name} ${version} works"\n`),
            mode: 0o755,
          },
        }
      : pkg.files;
  const root = join(dir, name);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN/control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Pixels tests <tests@pixels.invalid>\nDescription: test package ${name}\n`,
  );
  for (const [path, file] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), file.content);
    chmodSync(join(root, path), file.mode);
  }
  const out = join(dir, `${name}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, out], { stdio: 'ignore' });
  return readFileSync(out);
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/** Serves the repository under `prefix` (e.g. "/debian") for `suite`. */
export function serveFakeAptRepo(
  net: Internet,
  prefix: string,
  suite: string,
  packages: FakePackage[],
): void {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-apt-'));
  try {
    const stanzas: string[] = [];
    for (const pkg of packages) {
      const name = typeof pkg === 'string' ? pkg : pkg.name;
      const deb = buildDeb(dir, pkg, '1.0');
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
