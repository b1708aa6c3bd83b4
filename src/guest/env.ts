// The pixels CLI's `[env]` table, read the same way, but written for real: image variables go to
// /etc/environment (a marked block, other lines untouched) and /etc/profile.d/pixels-env.sh — pixels resolves
// them and never writes them. Session variables (forward / session_only) travel with each SSH session.
import { ValidationError } from '../core/errors';
import { GUEST_PATHS } from './paths';
import { shq, type FileSpec } from './shell';

export interface ResolvedEnv {
  /** Written into the sandbox for every login and service. */
  image: Record<string, string>;
  /** Sent with each session (SSH SetEnv / exec environment); forwarded values come from the host. */
  session: Record<string, string>;
  /** Names the sandbox's sshd must accept (AcceptEnv), sorted. */
  sessionKeys: string[];
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `$VAR` / `${VAR}` expansion against the host environment, like Go's os.ExpandEnv (unset = empty). */
export function expandEnv(value: string, hostEnv: Record<string, string | undefined>): string {
  return value.replace(/\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced: string, bare: string) => {
    return hostEnv[braced ?? bare] ?? '';
  });
}

function envError(key: string, why: string): ValidationError {
  const message = `env "${key}": ${why}`;
  return new ValidationError(message, [{ field: `env.${key}`, message }]);
}

/**
 * Resolves an `[env]` table (as parsed from TOML or settings). Forms, as in pixels:
 *   KEY = "value" | { value = "x" }           -> image variable ($VAR expanded from the host)
 *   KEY = { forward = true }                   -> session variable taken from the host (skipped if unset)
 *   KEY = { value = "x", session_only = true } -> session variable ($VAR expanded)
 */
export function resolveEnv(
  table: Record<string, unknown>,
  hostEnv: Record<string, string | undefined>,
): ResolvedEnv {
  const image: Record<string, string> = {};
  const session: Record<string, string> = {};
  const sessionKeys = new Set<string>();
  for (const [key, raw] of Object.entries(table)) {
    if (!KEY.test(key))
      throw envError(
        key,
        'a variable name has letters, digits and underscores and does not start with a digit',
      );
    if (typeof raw === 'string') {
      image[key] = checkValue(key, expandEnv(raw, hostEnv));
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw envError(key, 'unsupported type');
    const entry = raw as Record<string, unknown>;
    const unknownKeys = Object.keys(entry).filter((k) => !['value', 'forward', 'session_only'].includes(k));
    if (unknownKeys.length)
      throw envError(key, `unknown field ${unknownKeys.map((k) => `"${k}"`).join(', ')}`);
    if (entry.forward === true) {
      if ('value' in entry) throw envError(key, 'use either forward = true or value = "...", not both');
      sessionKeys.add(key);
      const value = hostEnv[key];
      if (value !== undefined) session[key] = value;
      continue;
    }
    if (typeof entry.value !== 'string') throw envError(key, 'needs value = "..." or forward = true');
    const value = checkValue(key, expandEnv(entry.value, hostEnv));
    if (entry.session_only === true) {
      session[key] = value;
      sessionKeys.add(key);
    } else image[key] = value;
  }
  return { image, session, sessionKeys: [...sessionKeys].sort() };
}

function checkValue(key: string, value: string): string {
  // /etc/environment (pam_env) has no escapes: these characters cannot be represented there.
  if (/[\n\r\0]/.test(value)) throw envError(key, 'values cannot contain line breaks');
  if (/["\\]/.test(value))
    throw envError(
      key,
      'values cannot contain double quotes or backslashes (/etc/environment has no escapes)',
    );
  return value;
}

const BEGIN = '# >>> pixels [env] (managed by Pixels; edits inside this block are replaced)';
const END = '# <<< pixels [env]';

/** Bash that puts the image variables into /etc/environment (marked block) and a profile.d file. */
export function envScript(image: Record<string, string>): string {
  const keys = Object.keys(image).sort();
  for (const key of keys) {
    if (!KEY.test(key))
      throw envError(
        key,
        'a variable name has letters, digits and underscores and does not start with a digit',
      );
    checkValue(key, image[key]);
  }
  const block = keys.map((k) => `${k}="${image[k]}"`).join('\n');
  const profile: FileSpec = {
    path: GUEST_PATHS.environmentProfile,
    mode: 0o644,
    content: [
      '# Pixels [env] image variables. Generated; changes are replaced.',
      ...keys.map((k) => `export ${k}=${shq(image[k])}`),
    ].join('\n'),
  };
  return `set -euo pipefail
touch /etc/environment
# Drop our old block, keep every other line.
awk -v b=${shq(BEGIN)} -v e=${shq(END)} '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' /etc/environment > /etc/environment.pixels-tmp
${keys.length ? `printf '%s\\n' ${shq(BEGIN)} ${shq(block)} ${shq(END)} >> /etc/environment.pixels-tmp` : ''}
chmod 0644 /etc/environment.pixels-tmp
mv -f /etc/environment.pixels-tmp /etc/environment
${keys.length ? writeProfile(profile) : `rm -f ${GUEST_PATHS.environmentProfile}`}
`;
}

function writeProfile(file: FileSpec): string {
  return `printf '%s\\n' ${shq(file.content)} > ${file.path}.pixels-tmp && chmod 0644 ${file.path}.pixels-tmp && mv -f ${file.path}.pixels-tmp ${file.path}`;
}
