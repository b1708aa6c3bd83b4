// The NAS as a jump host: a real sshd on 127.0.0.1 that lets in only the lab's NAS user (LAB_NAS_USER, made by
// up.sh). Its sessions run as that user, the only local user the host nft table lets open TCP connections to the
// lab's automatic bridge, so a sandbox there is reachable through this sshd (direct-tcpip, as OpenSSH's
// ProxyJump and our ssh2 hop use) and from nowhere else on this machine, as a laptop sees a NAS's NAT'd bridge.
import { generateKeyPair, type KeyPair } from '../../src/ssh/keys';
import type { JumpHost } from '../../src/ssh/connect';
import type { Lab } from './lab';
import { startSshd, type Sshd } from './sshd';

export interface NasSshd {
  sshd: Sshd;
  user: string;
  /** The key the NAS user accepts (the "Pixels SSH key" a user puts into truenas_admin's authorized keys). */
  userKey: KeyPair;
  /** The hop to pass as an SshTarget's `jump`. */
  jump: JumpHost;
}

export async function startNasSshd(lab: Lab): Promise<NasSshd> {
  const userKey = generateKeyPair('pixels-test-nas-user');
  const sshd = await startSshd({
    authorizedKeys: [userKey.publicOpenSsh],
    extraConfig: [`AllowUsers ${lab.nasUser}`, 'PermitRootLogin no', 'AllowTcpForwarding yes'],
    otherUsers: true,
  });
  return {
    sshd,
    user: lab.nasUser,
    userKey,
    jump: {
      host: sshd.host,
      port: sshd.port,
      username: lab.nasUser,
      privateKey: userKey.privateOpenSsh,
      hostKey: sshd.hostKeyPub,
      label: 'NAS jump host',
    },
  };
}
