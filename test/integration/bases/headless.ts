// The production BaseWorkflows (src/bases/workflowAdapter over src/workflows) with a headless WorkflowContext on
// the Incus lab, for the bases suite and `npm run bench:base`: the same create, clone and destroy the commands run.
import type { IncusBackend } from '../../../src/backends/incus/index';
import type { BaseWorkflows } from '../../../src/bases/index';
import { baseWorkflowsOf } from '../../../src/bases/workflowAdapter';
import { workflowHarness, type Harness } from '../workflows/context';

export interface HeadlessBases {
  workflows: BaseWorkflows;
  harness: Harness;
  dispose(): void;
}

export function headlessBaseWorkflows(backend: IncusBackend, socketPath: string): HeadlessBases {
  // No tools to install (the lab has no internet): user, SSH, env and egress, as for any sandbox.
  const harness = workflowHarness(backend, socketPath);
  const workflows = baseWorkflowsOf({
    context: async (_serverId, run) => ({ ...harness.ctx, run }),
    createDefaults: () => ({ cpu: '2', memoryMiB: 1024, egress: 'unrestricted' }),
  });
  return { workflows, harness, dispose: () => harness.dispose() };
}
