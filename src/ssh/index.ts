// Public API of the SSH layer (vscode-free). The editor layer wraps ShellSession in a Pseudoterminal, shows
// exec output in an output channel, and opens Remote-SSH on the hosts SshConfigWriter maintains.
export { quoteArg, quoteCommand, loginShellCommand } from './quote';
export {
  generateKeyPair,
  generateHostKey,
  parsePublicKey,
  fingerprint,
  loadUserIdentity,
  ensureDedicatedIdentity,
  defaultIdentityPath,
  type KeyPair,
  type PublicKey,
  type UserIdentity,
} from './keys';
export { KnownHosts, knownHostsName } from './known-hosts';
export {
  connect,
  connectJumpHost,
  isJumpHostFailure,
  scanHostKey,
  targetLabel,
  type SshTarget,
  type JumpHost,
  type ConnectOptions,
} from './connect';
export { SshPool, type PoolOptions } from './pool';
export { commandString, type ExecOptions, type SshExecResult } from './exec';
export { ShellSession, type ShellOptions, type ShellExit } from './shell';
export { waitForSsh, type WaitForSshOptions, type TargetSource } from './ready';
export {
  SshConfigWriter,
  BEGIN_MARKER,
  END_MARKER,
  type SshHostEntry,
  type SshConfigWriterOptions,
  type UpsertResult,
} from './ssh-config';
export { prepareSandboxAccess, prepareSandboxAccessOverSsh, type SandboxAccessOptions } from './access';
export { sessionVariables, loginCommandWithEnv, loginShellWithEnv } from './session-env';
export { followAddresses, type AddressChange, type FollowAddressesOptions } from './follow-address';
