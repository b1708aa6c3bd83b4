// Folds provisioning events into the state the editor shows: each step's state and its recent log lines, the
// current step for the progress notification, a percentage, and whether the sandbox is still provisioning.
import type { ProvisionEvent, StepState } from './runner';
import type { StepId } from './steps';

export interface StepView {
  id: StepId;
  title: string;
  state: StepState;
  alreadyDone: boolean;
  durationMs?: number;
  error?: string;
  /** The last lines of this step's log (bounded). */
  log: string[];
}

export class ProvisionTracker {
  private readonly steps = new Map<StepId, StepView>();

  constructor(private readonly logLines = 200) {}

  /** Pass every ProvisionEvent here (it is a valid `onEvent`). */
  readonly onEvent = (event: ProvisionEvent): void => {
    if (event.type === 'plan') {
      this.steps.clear();
      for (const s of event.steps)
        this.steps.set(s.id, { id: s.id, title: s.title, state: 'pending', alreadyDone: false, log: [] });
      return;
    }
    const step = this.steps.get(event.id);
    if (!step) return;
    if (event.type === 'log') {
      step.log.push(event.line);
      if (step.log.length > this.logLines) step.log.splice(0, step.log.length - this.logLines);
      return;
    }
    step.state = event.state;
    step.alreadyDone = event.alreadyDone ?? false;
    if (event.durationMs !== undefined) step.durationMs = event.durationMs;
    if (event.error !== undefined) step.error = event.error;
  };

  get all(): StepView[] {
    return [...this.steps.values()];
  }

  /** The running step, if any. */
  get current(): StepView | undefined {
    return this.all.find((s) => s.state === 'running');
  }

  get failed(): StepView | undefined {
    return this.all.find((s) => s.state === 'failed');
  }

  /** Still provisioning: some step is pending or running and none failed. */
  get active(): boolean {
    return !this.failed && this.all.some((s) => s.state === 'pending' || s.state === 'running');
  }

  /** Share of the steps that are done, 0-100. */
  get percent(): number {
    const all = this.all;
    return all.length ? Math.round((100 * all.filter((s) => s.state === 'done').length) / all.length) : 0;
  }

  /** One line for a progress notification, e.g. "Install dev tools (5/8)". */
  get headline(): string {
    const all = this.all;
    const failed = this.failed;
    if (failed) return `${failed.title} failed`;
    const current = this.current;
    if (current) return `${current.title} (${all.indexOf(current) + 1}/${all.length})`;
    return this.active ? 'Waiting' : 'Provisioned';
  }
}
