// A RunPhase for callers without an editor (tools, the MCP server, tests): every phase, step and percent goes to
// one callback, and a cancellable phase stops when the caller's signal aborts.
import type { OperationOptions } from '../core/sandbox';
import type { RunPhase } from './context';

export interface ProgressEvent {
  /** The phase's title ("Creating sandbox "x""). */
  phase: string;
  /** What happens now, when said. */
  message?: string;
  /** The server job's percent, when it reports one. */
  percent?: number;
}

export function plainRunPhase(signal?: AbortSignal, onEvent?: (event: ProgressEvent) => void): RunPhase {
  return async (title, cancellable, task) => {
    onEvent?.({ phase: title });
    const op: OperationOptions = {
      // Only a job the server can cancel is given the signal: aborting anything else would hide work still running.
      signal: cancellable ? signal : undefined,
      onProgress: (r) => onEvent?.({ phase: title, message: r.description, percent: r.percent }),
    };
    return task(op, (message) => onEvent?.({ phase: title, message }));
  };
}
