// Session variables of the `[env]` table (session_only values and forwarded host variables) travel with each
// Run Command / terminal session as an `env K=V … bash -l…` prefix, quoted for the remote shell. That needs no
// sshd AcceptEnv (which only sandboxes provisioned with those names would have).
import { ValidationError } from '../core/errors';
import type { EnvironmentConfig } from '../core/config';
import { quoteArg, quoteCommand } from './quote';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The variables a session gets: `session` values ($VAR expanded from the host with `expand`, as pixels does), then `forward` names taken from the host
 * environment (an unset one is skipped, as pixels does). A bad name or a NUL byte is a ValidationError.
 */
export function sessionVariables(
  env: Pick<EnvironmentConfig, 'session' | 'forward'>,
  hostEnv: Record<string, string | undefined>,
  expand: (value: string, hostEnv: Record<string, string | undefined>) => string,
): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (key: string, value: string) => {
    if (!NAME.test(key))
      throw new ValidationError(
        `env "${key}": a variable name has letters, digits and underscores and does not start with a digit`,
      );
    if (value.includes('\0')) throw new ValidationError(`env "${key}": a value cannot contain a NUL byte`);
    out[key] = value;
  };
  for (const [key, value] of Object.entries(env.session)) put(key, expand(value, hostEnv));
  for (const key of env.forward) {
    const value = hostEnv[key];
    if (value !== undefined) put(key, value);
  }
  return out;
}

/** `env 'K=V' … ` prefix (empty without variables); keys sorted so the command line is stable. */
function envPrefix(vars: Record<string, string>): string {
  const keys = Object.keys(vars).sort();
  if (keys.length === 0) return '';
  return `env ${keys.map((k) => quoteArg(`${k}=${vars[k]}`)).join(' ')} `;
}

/** A command line run by a login bash with the session variables set: `env K=V … bash -lc '<cmd>'`. */
export function loginCommandWithEnv(command: string, vars: Record<string, string>): string {
  return envPrefix(vars) + quoteCommand(['bash', '-lc', command]);
}

/** An interactive login shell with the session variables set (run on a pty): `env K=V … bash -l`. */
export function loginShellWithEnv(vars: Record<string, string>): string {
  return `${envPrefix(vars)}bash -l`;
}
