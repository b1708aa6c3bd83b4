// The sandbox workflows that the commands, the language model tools and the MCP server share (docs/workflows.md).
export type {
  EgressTracking,
  Provisioner,
  RememberedEgress,
  RunPhase,
  SandboxSsh,
  WorkflowContext,
} from './context';
export { plainRunPhase, type ProgressEvent } from './progress';
export {
  combinationProblem,
  createSandbox,
  serverAbilities,
  validateCreate,
  type CreateAnswers,
  type CreateOptions,
  type ServerAbilities,
} from './create';
export { cloneSandbox, validateCloneName, type CloneRequest } from './clone';
export { restoreCheckpoint, type RestoreRequest } from './restore';
export { destroySandbox, type DestroyRequest } from './destroy';
export { changeState, type LifecycleVerb } from './lifecycle';
export { checkpointClash, createCheckpoint, deleteCheckpoint } from './checkpoints';
export { applyEgressPolicy } from './egress';
export { provisioningStatus, provisionSandbox, ProvisioningFailed } from './provision';
export {
  allowEgress,
  checkEgressEntry,
  denyEgress,
  readEgress,
  setEgress,
  type EgressReport,
} from './egressPolicy';
export { checkCanSetUpSsh, setUpSshAccess } from './sshSetup';
export { changeExecutor, EgressTracker, type EgressNotice, type EgressTrackerDeps } from './egressTracker';
export { Provisioning, type KeyValueStore, type ProvisioningRun, type ProvisionInputs } from './provisioning';
export { SshAccess, pixelsSshDir, type SshSettingsSource } from './sshAccess';
export { waitBooted } from './boot';
