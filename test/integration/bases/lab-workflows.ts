// BaseWorkflows on the Incus lab without an editor, for the bases suite and `npm run bench:base`: the production
// adapter (src/bases/workflowAdapter.ts) over the shared sandbox workflows, with the headless WorkflowContext the
// workflow suite builds (SshAccess with its own key and known_hosts, the egress tracker, provisioning). A create
// is create → SSH access → provisioning; a clone is clone → its own identity → provisioning's SSH step → egress
// re-check, exactly as the commands and the tools run them.
import type { IncusBackend } from '../../../src/backends/incus/index';
import type { BaseWorkflows } from '../../../src/bases/index';
import { baseWorkflowsOf } from '../../../src/bases/workflowAdapter';
import { workflowHarness, type Harness } from '../workflows/context';

export interface LabWorkflows extends BaseWorkflows {
  harness: Harness;
  dispose(): void;
}

export function labWorkflows(backend: IncusBackend, socketPath: string): LabWorkflows {
  // The lab has no internet: nothing to install beyond what its image has (the same for a base and a plain create).
  const harness = workflowHarness(backend, socketPath, {
    tools: [],
    packages: [],
    timeouts: {},
    sources: {},
    agentExtra: [],
    allow: [],
    imageEnv: {},
  });
  const workflows = baseWorkflowsOf({
    context: async (_serverId, run) => ({ ...harness.ctx, run }),
    createDefaults: () => ({ cpu: '1', memoryMiB: 1024, egress: 'unrestricted' }),
  });
  return { ...workflows, harness, dispose: () => harness.dispose() };
}
