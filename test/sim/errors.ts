// The middleware's exception family (service_exception.py) as the simulator needs it, plus how each one is
// formatted: `data` of a JSON-RPC error (format_truenas_error) and a job's error/exc_info (job.py).
import type { Json, SimValue } from './ejson.js';

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  ENOTEMPTY: 39,
  ELOOP: 40,
  EOPNOTSUPP: 95,
  EBADMSG: 74,
  ETIMEDOUT: 110,
  ENOMETHOD: 201,
  ENOTAUTHENTICATED: 207,
} as const;

const NAMES = new Map<number, string>(Object.entries(ERRNO).map(([name, code]) => [code, name]));

export function errname(code: number): string {
  return NAMES.get(code) ?? 'EUNKNOWN';
}

/** Python repr() of a str, enough for messages (single quotes unless the text has one). */
export function pyRepr(text: string): string {
  if (text.includes("'") && !text.includes('"')) return `"${text}"`;
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** CallError(errmsg, errno=EFAULT, extra=None): -32001, reason "[ERRNAME] errmsg". */
export class CallError extends Error {
  constructor(
    readonly errmsg: string,
    readonly errno: number = ERRNO.EFAULT,
    readonly extra: SimValue = null,
  ) {
    super(`[${errname(errno)}] ${errmsg}`);
  }
  get pyClass(): string {
    return 'CallError';
  }
  get pyRepr(): string {
    return `CallError(${pyRepr(this.errmsg)})`;
  }
}

export type ValidationItem = [string | null, string, number];

/**
 * ValidationError (single) or ValidationErrors (list): -32602 on a plain call, FAILED job with type VALIDATION.
 * A single error prints "[ERRNAME] attr: msg" (attr None -> "None"); a list prints one such line per error,
 * each ending in "\n".
 */
export class ValidationErrors extends Error {
  constructor(
    readonly items: ValidationItem[],
    readonly single = false,
    readonly reprText?: string,
  ) {
    super(single ? line(items[0]) : items.map((item) => `${line(item)}\n`).join(''));
  }
  static one(attribute: string | null, message: string, errno: number = ERRNO.EINVAL, repr?: string) {
    return new ValidationErrors([[attribute, message, errno]], true, repr);
  }
  get pyClass(): string {
    return this.single ? 'ValidationError' : 'ValidationErrors';
  }
  get pyRepr(): string {
    if (this.reprText) return this.reprText;
    if (this.single) {
      const [attr, msg, errno] = this.items[0];
      return `ValidationError(${attr === null ? 'None' : pyRepr(attr)}, ${pyRepr(msg)}, ${errno})`;
    }
    return `ValidationErrors(${this.items.length} errors)`;
  }
}

function line([attr, msg, errno]: ValidationItem): string {
  return `[${errname(errno)}] ${attr ?? 'None'}: ${msg}`;
}

/** InstanceNotFound("<Entity> <id> does not exist"): a ValidationError with errno ENOENT and attribute None. */
export function instanceNotFound(message: string): ValidationErrors {
  return new ValidationErrors([[null, message, ERRNO.ENOENT]], true, `InstanceNotFound(${pyRepr(message)})`);
}

/** filter_list(get=True) with no match: an IndexError subclass, so -32001 EINVAL "MatchNotFound()". */
export class MatchNotFound extends Error {
  constructor() {
    super('MatchNotFound()');
  }
}

/**
 * An OSError a method lets escape (e.g. truenas_pyos SymlinkInPathError): not a CallError, so rpc.py answers
 * -32001 with errno EINVAL and str(e), "[Errno N] strerror: 'filename'"; a job fails with that text.
 */
export class PyOSError extends Error {
  constructor(
    readonly pyClass: string,
    readonly osErrno: number,
    strerror: string,
    filename: string,
  ) {
    super(`[Errno ${osErrno}] ${strerror}: ${pyRepr(filename)}`);
  }
}

/** A protocol-level JSON-RPC error with its own code (-32000, -32601 ...). */
export class RpcFault extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: Json,
  ) {
    super(message);
  }
}

export interface RpcErrorBody {
  code: number;
  message: string;
  data?: Json;
}

function trace(className: string, reason: string, repr: string): Json {
  return {
    class: className,
    frames: [],
    formatted: `Traceback (most recent call last):\n  File "/usr/lib/python3/dist-packages/middlewared/main.py", line 1, in call\nmiddlewared.service_exception.${className}: ${reason}\n`,
    repr,
  };
}

export function truenasData(errno: number, reason: string, extra: Json, traceJson: Json | null): Json {
  return { error: errno, errname: errname(errno), reason, trace: traceJson, extra };
}

/** The JSON-RPC error object for any exception thrown by a method (rpc.py process_method_call). */
export function toRpcError(error: unknown): RpcErrorBody {
  if (error instanceof RpcFault) {
    return error.data === undefined
      ? { code: error.code, message: error.message }
      : { code: error.code, message: error.message, data: error.data };
  }
  if (error instanceof ValidationErrors) {
    return {
      code: -32602,
      message: 'Invalid params',
      data: truenasData(
        ERRNO.EINVAL,
        error.message,
        error.items,
        trace(error.pyClass, error.message, error.pyRepr),
      ),
    };
  }
  if (error instanceof CallError) {
    return {
      code: -32001,
      message: 'Method call error',
      data: truenasData(
        error.errno,
        error.message,
        extraJson(error.extra),
        trace('CallError', error.message, error.pyRepr),
      ),
    };
  }
  const text = error instanceof Error ? error.message : String(error);
  const cls =
    error instanceof MatchNotFound
      ? 'MatchNotFound'
      : error instanceof PyOSError
        ? error.pyClass
        : 'Exception';
  return {
    code: -32001,
    message: 'Method call error',
    data: truenasData(ERRNO.EINVAL, text, null, trace(cls, text, text)),
  };
}

function extraJson(extra: SimValue): Json {
  return JSON.parse(JSON.stringify(extra ?? null)) as Json;
}

export interface JobFailure {
  error: string;
  exception: string;
  excInfo: { repr: string; type: string; errno: number | null; extra: Json };
}

/** error / exception / exc_info of a FAILED job (job.py). */
export function toJobFailure(error: unknown): JobFailure {
  if (error instanceof ValidationErrors) {
    return {
      error: error.message,
      exception: formatted(error.pyClass, error.message),
      excInfo: {
        repr: error.pyRepr,
        type: 'VALIDATION',
        errno: error.single ? error.items[0][2] : null,
        extra: error.items,
      },
    };
  }
  if (error instanceof CallError) {
    return {
      error: error.message,
      exception: formatted('CallError', error.message),
      excInfo: { repr: error.pyRepr, type: 'CallError', errno: error.errno, extra: extraJson(error.extra) },
    };
  }
  const text = error instanceof Error ? error.message : String(error);
  return {
    error: text,
    exception: formatted('Exception', text),
    excInfo: { repr: `Exception(${pyRepr(text)})`, type: 'Exception', errno: null, extra: null },
  };
}

function formatted(cls: string, reason: string): string {
  return `Traceback (most recent call last):\n  File "/usr/lib/python3/dist-packages/middlewared/job.py", line 1, in run\nmiddlewared.service_exception.${cls}: ${reason}\n`;
}
