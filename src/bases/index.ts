// Bases and the agent lifecycle policy: the vscode-free API the commands, the LM tools and the MCP server use.
export {
  AGENT_SANDBOX_PREFIX,
  BASE_CHECKPOINT_LABEL,
  BaseService,
  agentSandboxName,
  runSetupScript,
  type BaseFailure,
  type BaseInfo,
  type BaseProgress,
  type BaseRunOptions,
  type BaseServiceDeps,
  type BaseStatus,
  type BaseWorkflows,
  type CreateFromBaseOptions,
} from './bases';
export {
  BUILTIN_BASES,
  DEFAULT_BASE_PREFIX,
  DEFAULT_LIFECYCLE,
  baseChain,
  parseBases,
  type AgentLifecycleConfig,
  type BaseDefinition,
  type BasesConfig,
  type SetupScriptRef,
} from '../core/basesConfig';
export { AgentSandboxStore, type AgentSandboxRecord } from './agentStore';
export {
  LifecycleEnforcer,
  describeDeadlines,
  lifecycleDeadlines,
  lifecycleDue,
  systemClock,
  type Clock,
  type LifecycleAction,
  type LifecycleDeadlines,
  type LifecycleEnforcerDeps,
} from './lifecycle';
export { formatRemaining, parseGoDuration } from '../core/duration';
