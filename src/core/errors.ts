// Typed errors with one-sentence, user-facing messages. Backends map their wire errors onto these, so the
// editor layer never has to know which server produced them and never shows a raw stack.

export type PixelsErrorKind =
  | 'not-found'
  | 'validation'
  | 'already-exists'
  | 'not-authenticated'
  | 'not-authorized'
  | 'connection'
  | 'timeout'
  | 'security'
  | 'unsupported'
  | 'cancelled'
  | 'server';

export class PixelsError extends Error {
  readonly kind: PixelsErrorKind;
  constructor(kind: PixelsErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = new.target.name;
  }
}

export class NotFoundError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('not-found', message, options);
  }
}

/** One problem with one input field (`field` is the server's attribute path, or '' for the whole input). */
export interface FieldProblem {
  field: string;
  message: string;
}

export class ValidationError extends PixelsError {
  readonly problems: FieldProblem[];
  constructor(message: string, problems: FieldProblem[] = [], options?: { cause?: unknown }) {
    super('validation', message, options);
    this.problems = problems;
  }
}

export class AlreadyExistsError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('already-exists', message, options);
  }
}

export class NotAuthenticatedError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('not-authenticated', message, options);
  }
}

export class NotAuthorizedError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('not-authorized', message, options);
  }
}

export class ConnectionError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('connection', message, options);
  }
}

export class TimeoutError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('timeout', message, options);
  }
}

/** TLS verification, a pinned fingerprint or a host key that does not match, a key refused over plain ws://. */
export class SecurityError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('security', message, options);
  }
}

export class UnsupportedError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unsupported', message, options);
  }
}

export class CancelledError extends PixelsError {
  constructor(message = 'Cancelled.', options?: { cause?: unknown }) {
    super('cancelled', message, options);
  }
}

/**
 * A restore refused before anything was stopped: sandboxes cloned from a newer state of `sandbox` depend on it
 * (a ZFS rollback past their origin would destroy them). `dependents` are their sandbox names; `otherDatasets`
 * anything else that depends on it and is not a sandbox of ours.
 */
export class DependentClonesError extends ValidationError {
  constructor(
    message: string,
    readonly sandbox: string,
    readonly label: string,
    readonly dependents: string[],
    readonly otherDatasets: string[] = [],
  ) {
    super(message, [{ field: 'label', message }]);
  }
}

/**
 * The sandbox lives on a cluster member that cannot be reached (its daemon stopped, or evacuated): the rest of
 * the cluster works. `member` is its name.
 */
export class MemberUnavailableError extends PixelsError {
  constructor(
    message: string,
    readonly member: string,
    options?: { cause?: unknown },
  ) {
    super('server', message, options);
  }
}

/** The server failed for a reason of its own; `message` is its reason in one sentence. */
export class ServerError extends PixelsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('server', message, options);
  }
}

/** A message fit for a notification: the PixelsError text, or a generic sentence for anything unexpected. */
export function userMessage(err: unknown): string {
  if (err instanceof PixelsError) return err.message;
  if (err instanceof Error && err.message) return `Unexpected error: ${err.message.split('\n')[0]}`;
  return 'Unexpected error.';
}
