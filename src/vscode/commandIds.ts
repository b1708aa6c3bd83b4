// Every command the extension contributes, in one typed list. test/unit/commands-manifest.test.ts checks that
// this list and package.json `contributes.commands` are the same set, so a command cannot be registered without
// a manifest entry (or the other way round).

export const CommandIds = {
  addServer: 'pixels.addServer',
  removeServer: 'pixels.removeServer',
  createSandbox: 'pixels.createSandbox',
  createAndOpen: 'pixels.createAndOpen',
  start: 'pixels.start',
  stop: 'pixels.stop',
  restart: 'pixels.restart',
  destroy: 'pixels.destroy',
  createCheckpoint: 'pixels.createCheckpoint',
  restoreCheckpoint: 'pixels.restoreCheckpoint',
  deleteCheckpoint: 'pixels.deleteCheckpoint',
  clone: 'pixels.clone',
  copyIp: 'pixels.copyIp',
  showLogs: 'pixels.showLogs',
  refresh: 'pixels.refresh',
  filter: 'pixels.filter',
  clearFilter: 'pixels.clearFilter',
  openInSandbox: 'pixels.openInSandbox',
  openInSandboxNewWindow: 'pixels.openInSandboxNewWindow',
  openFolderInSandbox: 'pixels.openFolderInSandbox',
  openTerminal: 'pixels.openTerminal',
  runCommand: 'pixels.runCommand',
  setupSsh: 'pixels.setupSsh',
  setupJumpHost: 'pixels.setupJumpHost',
  installRemoteSsh: 'pixels.installRemoteSsh',
  importApiKeys: 'pixels.importApiKeys',
  trustNewCertificate: 'pixels.trustNewCertificate',
  provisionSandbox: 'pixels.provisionSandbox',
  showEgressPolicy: 'pixels.showEgressPolicy',
  setEgressMode: 'pixels.setEgressMode',
  allowDomain: 'pixels.allowDomain',
  denyDomain: 'pixels.denyDomain',
  showDetails: 'pixels.showDetails',
  showProvisioningStatus: 'pixels.showProvisioningStatus',
  sandboxWindowActions: 'pixels.sandboxWindowActions',
  buildBase: 'pixels.buildBase',
  rebuildBase: 'pixels.rebuildBase',
  deleteBase: 'pixels.deleteBase',
  createFromBase: 'pixels.createFromBase',
  applyLifecyclePolicy: 'pixels.applyLifecyclePolicy',
  removeLifecyclePolicy: 'pixels.removeLifecyclePolicy',
} as const;

export type CommandId = (typeof CommandIds)[keyof typeof CommandIds];

export const allCommandIds: readonly CommandId[] = Object.values(CommandIds);
