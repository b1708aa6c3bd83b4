// Where Pixels keeps its files inside a sandbox. One place, so the scripts and the host code agree.
export const GUEST_PATHS = {
  egressPolicy: '/etc/pixels/egress.json',
  /** Temporary allowances for the provisioning sources (apt, npm, Node, mise), removed when provisioning ends. */
  egressProvisioning: '/etc/pixels/egress-provisioning',
  egressResolvedCache: '/var/lib/pixels/egress/resolved',
  egressScript: '/usr/local/sbin/pixels-egress',
  safeApt: '/usr/local/sbin/pixels-apt',
  sudoers: '/etc/sudoers.d/pixels',
  provisionState: '/var/lib/pixels/provision',
  provisionLogs: '/var/log/pixels/provision',
  environmentProfile: '/etc/profile.d/pixels-env.sh',
  sshdDropIn: '/etc/ssh/sshd_config.d/pixels.conf',
} as const;

export const PIXEL_USER = { name: 'pixel', uid: 1000, gid: 1000, home: '/home/pixel' } as const;
