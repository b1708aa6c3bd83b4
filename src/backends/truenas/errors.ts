// Maps TrueNAS wire errors (JSON-RPC `error` objects and failed jobs) onto the typed PixelsError family,
// with one clear sentence for the user and no stack, no secret.
import {
  AlreadyExistsError,
  ConnectionError,
  FieldProblem,
  NotAuthenticatedError,
  NotAuthorizedError,
  NotFoundError,
  PixelsError,
  ServerError,
  ValidationError,
} from '../../core/errors';
import { redact } from '../../core/log';

/** `error.data` as the middleware builds it (`format_truenas_error`). */
export interface TrueNASErrorData {
  error?: number | null;
  errname?: string | null;
  reason?: string | null;
  extra?: unknown;
  trace?: unknown;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: TrueNASErrorData;
}

/** The parts of a job object that describe a failure. */
export interface JobFailure {
  method?: string;
  state: string;
  error?: string | null;
  exc_info?: { type?: string | null; errno?: number | null; extra?: unknown; repr?: string | null } | null;
}

export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_TOO_MANY_CALLS = -32000;
export const RPC_CALL_ERROR = -32001;

export const ENOENT = 2;
export const EAGAIN = 11;
export const EACCES = 13;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOTAUTHENTICATED = 207;

/** A JSON-RPC error as received, kept on the typed error as `cause` for logs and retry decisions. */
export class RpcCallError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    readonly rpcMessage: string,
    readonly data?: TrueNASErrorData,
  ) {
    super(`${method}: ${data?.reason ?? rpcMessage} (code ${code})`);
    this.name = 'RpcCallError';
  }
}

/** Turns `data.extra` (`[[attribute, message, errno], …]`) into field problems. */
export function fieldProblems(extra: unknown): FieldProblem[] {
  if (!Array.isArray(extra)) return [];
  const out: FieldProblem[] = [];
  for (const item of extra) {
    if (Array.isArray(item) && typeof item[1] === 'string') {
      out.push({ field: typeof item[0] === 'string' ? item[0] : '', message: item[1] });
    }
  }
  return out;
}

/** `"[EINVAL] virt_instance_create.name: Name 'x' already exists\n"` → `Name 'x' already exists`. */
export function cleanReason(reason: string): string {
  const firstLine =
    reason
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? '';
  let text = firstLine.replace(/^\[[A-Z0-9_]+\]\s*/, '');
  // "None: VirtInstance x does not exist" / "virt_instance_create.name: …": drop the attribute prefix.
  text = text.replace(/^(None|[A-Za-z_][\w.]*):\s+/, '');
  return text;
}

function sentence(text: string): string {
  const t = redact(text).trim();
  if (!t) return t;
  const capital = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** Short, readable field name: `virt_instance_create.memory` → `memory`. */
export function shortField(field: string): string {
  if (!field) return '';
  const parts = field.split('.');
  return parts.length > 1 ? parts.slice(1).join('.') : field;
}

function validationError(
  context: string,
  problems: FieldProblem[],
  fallback: string,
  cause: unknown,
): PixelsError {
  const cleaned = problems.map((p) => ({ field: shortField(p.field), message: cleanMessage(p.message) }));
  const exists = cleaned.find((p) => /already exists/i.test(p.message));
  if (exists) return new AlreadyExistsError(sentence(`${context}: ${exists.message}`), { cause });
  const missing = cleaned.find((p) => /does not exist|not found/i.test(p.message));
  if (missing && cleaned.length === 1) return new NotFoundError(sentence(missing.message), { cause });
  const list = cleaned.length
    ? cleaned.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join('; ')
    : cleanReason(fallback);
  return new ValidationError(sentence(`${context} was refused: ${list}`), cleaned, { cause });
}

/** Pydantic prefixes its messages with "Value error, "; the user does not need that. */
function cleanMessage(message: string): string {
  return redact(message.replace(/^Value error,\s*/, '').trim());
}

/**
 * Maps a JSON-RPC error to a typed error. `context` is what was being done, e.g. `Creating sandbox "a"`.
 */
export function mapRpcError(err: RpcCallError, context: string): PixelsError {
  const data = err.data;
  const reason = data?.reason ?? err.rpcMessage;
  const errname = data?.errname ?? '';
  const errnum = data?.error ?? undefined;
  const cause = err;
  if (err.code === RPC_METHOD_NOT_FOUND) {
    return new ServerError(sentence(`${context} failed: the server does not know the method ${err.method}`), {
      cause,
    });
  }
  if (err.code === RPC_TOO_MANY_CALLS) {
    return new ServerError(sentence(`${context} failed: the server is busy (too many concurrent calls)`), {
      cause,
    });
  }
  if (errnum === ENOTAUTHENTICATED || errname === 'ENOTAUTHENTICATED' || /ENOTAUTHENTICATED/.test(reason)) {
    return new NotAuthenticatedError(sentence(`${context} failed: the session is not authenticated`), {
      cause,
    });
  }
  if (errnum === EACCES || errname === 'EACCES') {
    return new NotAuthorizedError(
      sentence(`${context} failed: the API key's user is not allowed to do this (${cleanReason(reason)})`),
      { cause },
    );
  }
  if (/MatchNotFound/.test(reason))
    return new NotFoundError(sentence(`${context} failed: no match found`), { cause });
  if (err.code === RPC_INVALID_PARAMS) {
    return validationError(context, fieldProblems(data?.extra), reason, cause);
  }
  const clean = cleanReason(reason);
  if (/does not exist|not found/i.test(clean) || errnum === ENOENT) {
    return new NotFoundError(sentence(clean), { cause });
  }
  if (errnum === EEXIST || errname === 'EEXIST' || /already exists/i.test(clean)) {
    return new AlreadyExistsError(sentence(`${context} failed: ${clean}`), { cause });
  }
  return new ServerError(sentence(`${context} failed: ${clean || err.rpcMessage}`), { cause });
}

/** A job that ended FAILED, as an Error carrying the raw job fields for logs. */
export class JobFailedError extends Error {
  constructor(readonly job: JobFailure) {
    super(`${job.method ?? 'job'} ${job.state}: ${job.error ?? ''}`);
    this.name = 'JobFailedError';
  }
}

/** Maps a FAILED job to a typed error: validation problems per field, not found, already exists, or server. */
export function mapJobFailure(job: JobFailure, context: string): PixelsError {
  const cause = new JobFailedError(job);
  const info = job.exc_info ?? undefined;
  const error = job.error ?? '';
  if (info?.type === 'VALIDATION') {
    return validationError(context, fieldProblems(info.extra), error, cause);
  }
  const clean = cleanReason(error);
  if (/ENOTAUTHENTICATED/.test(error)) {
    return new NotAuthenticatedError(sentence(`${context} failed: the session is not authenticated`), {
      cause,
    });
  }
  if (info?.errno === EACCES || /^\[EACCES\]/.test(error)) {
    return new NotAuthorizedError(sentence(`${context} failed: ${clean}`), { cause });
  }
  if (/does not exist|not found/i.test(clean) || info?.errno === ENOENT) {
    return new NotFoundError(sentence(`${context} failed: ${clean}`), { cause });
  }
  if (/already exists/i.test(clean) || info?.errno === EEXIST) {
    return new AlreadyExistsError(sentence(`${context} failed: ${clean}`), { cause });
  }
  return new ServerError(sentence(`${context} failed: ${clean || 'the server gave no reason'}`), { cause });
}

/** Whether a JSON-RPC error means "try again later" (the call did not run or can safely run again). */
export function isBusyError(err: RpcCallError): boolean {
  if (err.code === RPC_TOO_MANY_CALLS) return true;
  const n = err.data?.error;
  const name = err.data?.errname;
  return n === EAGAIN || n === EBUSY || name === 'EAGAIN' || name === 'EBUSY';
}

export function isNotAuthenticated(err: RpcCallError): boolean {
  return (
    err.data?.error === ENOTAUTHENTICATED ||
    err.data?.errname === 'ENOTAUTHENTICATED' ||
    /ENOTAUTHENTICATED/.test(err.data?.reason ?? '')
  );
}

/** Dropped connection during a call: `sent` says whether the request may have reached the server. */
export class ConnectionDroppedError extends ConnectionError {
  constructor(
    message: string,
    readonly sent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
