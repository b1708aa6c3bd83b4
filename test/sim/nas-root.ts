// The simulator's stand-in for a TrueNAS box's own root filesystem: a temporary directory with the files an
// attack through a followed symlink would go for. Tests compare them byte for byte before and after.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const FILES: [string, string, number][] = [
  [
    'etc/passwd',
    'root:x:0:0:root:/root:/usr/bin/zsh\ntruenas_admin:x:950:950::/home/truenas_admin:/usr/bin/zsh\n',
    0o644,
  ],
  ['etc/shadow', 'root:*:20000::::::\ntruenas_admin:$6$sim$hash:20000:0:99999:7:::\n', 0o600],
  ['etc/hostname', 'truenas\n', 0o644],
  ['etc/machine-id', '0123456789abcdef0123456789abcdef\n', 0o444],
  [
    'etc/ssh/ssh_host_ed25519_key',
    '-----BEGIN OPENSSH PRIVATE KEY-----\nNAS-HOST-KEY\n-----END OPENSSH PRIVATE KEY-----\n',
    0o600,
  ],
  ['etc/ssh/ssh_host_ed25519_key.pub', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINAS nas\n', 0o644],
  ['root/.ssh/authorized_keys', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIADMIN admin@laptop\n', 0o600],
  [
    'home/truenas_admin/.ssh/authorized_keys',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIADMIN admin@laptop\n',
    0o600,
  ],
];

export function makeNasRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'pxsim-nas-'));
  for (const [path, content, mode] of FILES) {
    const full = join(root, path);
    mkdirSync(join(full, '..'), { recursive: true, mode: 0o755 });
    writeFileSync(full, content, { mode });
  }
  return root;
}

/** Every regular file under the NAS root with its bytes and mode (for before/after comparisons). */
export function snapshotNasRoot(root: string): Map<string, { data: string; mode: number }> {
  const out = new Map<string, { data: string; mode: number }>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else
        out.set(relative(root, full), {
          data: readFileSync(full).toString('base64'),
          mode: statSync(full).mode & 0o7777,
        });
    }
  };
  walk(root);
  return out;
}
