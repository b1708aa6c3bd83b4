// Persistent sessions inside a sandbox (agents, and Open Terminal when it is set to persist): tmux from the distro on
// a socket of our own (`tmux -L pixels`), so a user's own tmux is never touched. Closing the SSH channel of an
// attached client only detaches it; the session lives on. Everything here builds command lines and parses output;
// the caller runs them over SSH. Session variables never reach a command line (they would show in `ps`): they
// travel on stdin into a 0600 file that the session's shell sources and deletes.
import { ValidationError } from '../core/errors';
import { quoteArg, quoteCommand } from '../ssh/quote';

/** The tmux server socket name (`-L`): ours alone. */
export const SESSION_SOCKET = 'pixels';
/** Where a session's env file and our tmux config live, relative to the user's home. */
const SESSION_DIR = '.pixels/sessions';
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** First line of the list script's output: tmux is there / is not. */
const LIST_OK = 'pixels-sessions: ok';
const LIST_NO_TMUX = 'pixels-sessions: no tmux';
/** The tmux `wait-for` channel signalled whenever a session starts, ends, dies or gets or loses a client. */
const CHANGED_CHANNEL = 'pixels-changed';
/**
 * How long one wait lasts before the watcher lists anyway. It bounds a wait left behind by a window that went away,
 * and a change missed because tmux lost it: a channel signalled twice with nobody waiting forgets both (3.3a,
 * cmd-wait-for.c removes a woken channel on the second signal), which can only happen between two waits.
 */
export const WATCH_SECONDS = 60;
/** Exit code of the start script when tmux is missing, and when the name is taken. */
export const EXIT_NO_TMUX = 127;
export const EXIT_SESSION_EXISTS = 3;

export type SessionKind = 'agent' | 'terminal' | 'command';

export interface SessionInfo {
  name: string;
  /** False once the session's program ended (the pane is kept so its last output can still be read). */
  running: boolean;
  exitCode?: number;
  createdAt: Date;
  /** How many clients (terminals, in any window) are attached now. */
  attached: number;
  kind?: SessionKind;
  /** What it runs, as the user gave it (for display only). */
  command?: string;
}

export interface SessionList {
  /** False when tmux is not installed in the sandbox. */
  tmux: boolean;
  sessions: SessionInfo[];
}

/** Why a session name is not usable (tmux turns `.` and `:` into `_`, so they are refused), or undefined. */
export function sessionNameProblem(name: string): string | undefined {
  if (!NAME.test(name))
    return 'A session name has 1 to 64 letters, digits, "-" or "_" (no spaces, dots or colons).';
  return undefined;
}

function checkName(name: string): string {
  const problem = sessionNameProblem(name);
  if (problem) throw new ValidationError(`"${name}": ${problem}`);
  return name;
}

/** `base`, or `base-2`, `base-3`… the first one not in `taken`; `base` is cleaned into a valid name first. */
export function suggestSessionName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const clean =
    base
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 56) || 'session';
  if (!used.has(clean)) return clean;
  for (let i = 2; ; i++) if (!used.has(`${clean}-${i}`)) return `${clean}-${i}`;
}

/** tmux's `-t` for exactly this session (`=` turns off prefix matching). */
function target(name: string): string {
  return quoteArg(`=${checkName(name)}`);
}

function tmux(...args: string[]): string {
  return `tmux -L ${SESSION_SOCKET} ${args.join(' ')}`;
}

/** A path inside the sandbox for the shell: absolute as is, `~` / `~/x` relative to the home (the rest quoted). */
function shellPath(path: string): string {
  if (path.includes('\0') || /[\n\r]/.test(path))
    throw new ValidationError('A folder path cannot hold line breaks.');
  if (path === '~') return '"$HOME"';
  if (path.startsWith('~/')) return `"$HOME"/${quoteArg(path.slice(2))}`;
  if (!path.startsWith('/')) throw new ValidationError(`"${path}" is not an absolute path (or ~/…).`);
  return quoteArg(path);
}

/** Control characters would break the one-line-per-session listing: a label keeps printable text only. */
function printable(text: string): string {
  return [...text]
    .map((ch) => (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? ' ' : ch))
    .join('')
    .replace(/ +/g, ' ')
    .trim();
}

/** The env file's content (sent on stdin): one `export K=V` line per session variable, values shell-quoted. */
export function envFileContent(vars: Record<string, string>): string {
  return Object.keys(vars)
    .sort()
    .map((key) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
        throw new ValidationError(`"${key}" is not a variable name.`);
      return `export ${key}=${quoteArg(vars[key])}\n`;
    })
    .join('');
}

/**
 * tmux commands setting the hooks that signal CHANGED_CHANNEL. They go in our tmux.conf (a new server) and are run
 * on every start (a server started by an older version has none); a tmux without one of them still runs sessions,
 * and the watcher's bounded wait then stands in.
 */
const CHANGE_HOOKS = ['session-closed', 'pane-died', 'client-attached', 'client-detached'].map(
  (hook) => `set-hook -g ${hook} ${quoteArg(`wait-for -S ${CHANGED_CHANNEL}`)}`,
);

export interface StartSessionOptions {
  name: string;
  /** A shell command line run by a login bash; without it the session is an interactive login shell. */
  command?: string;
  /** Working folder (absolute, or `~/…`); default the home. */
  cwd?: string;
  kind: SessionKind;
  /** Shown in the tree; default the command. */
  label?: string;
}

/**
 * Bash (run as the session's user, stdin = envFileContent) that starts a detached session. Exits EXIT_NO_TMUX when
 * tmux is missing and EXIT_SESSION_EXISTS when the name is taken; nothing is left behind in either case.
 */
export function startSessionScript(options: StartSessionOptions): string {
  const name = checkName(options.name);
  if (options.command !== undefined && !options.command.trim())
    throw new ValidationError('The session needs a command to run.');
  const envFile = `"$HOME"/${SESSION_DIR}/${name}.env`;
  // The shell tmux starts: read the variables, forget the file, then become the login shell or the command.
  const run = options.command === undefined ? 'bash -l' : `bash -lc ${quoteArg(options.command)}`;
  // The exit code is kept as a session option too, and the end is signalled from here: tmux records a dead pane's
  // status (and runs its pane-died hook) only when it reaps the process, which it sometimes never does (tmux 3.3a,
  // server-fn.c: no PANE_STATUSREADY, no hook).
  const inner = quoteCommand([
    'bash',
    '-c',
    `. ${envFile} && rm -f ${envFile} && { ${run}; s=$?; tmux set-option @pixels_exit "$s" 2> /dev/null; tmux wait-for -S ${CHANGED_CHANNEL} 2> /dev/null; exit "$s"; }`,
  ]);
  const label = printable(options.label ?? options.command ?? 'login shell');
  const conf = [
    // The pane of a program that ended stays, so the tree can say "exited (code N)" and Attach shows its output.
    'set -g remain-on-exit on',
    'set -g history-limit 50000',
    'set -g mouse on',
    ...CHANGE_HOOKS,
  ].join('\n');
  return `set -u
command -v tmux > /dev/null 2>&1 || { echo 'tmux is not installed in this sandbox' >&2; exit ${EXIT_NO_TMUX}; }
if ${tmux('has-session', '-t', target(name))} 2> /dev/null; then
  echo ${quoteArg(`a session named "${name}" is already there`)} >&2; exit ${EXIT_SESSION_EXISTS}
fi
umask 077
mkdir -p "$HOME"/${SESSION_DIR} && chmod 700 "$HOME"/.pixels "$HOME"/${SESSION_DIR} || exit 1
${options.cwd ? `[ -d ${shellPath(options.cwd)} ] || { echo ${quoteArg(`no folder ${options.cwd} in the sandbox`)} >&2; exit 1; }\n` : ''}cat > ${envFile} || exit 1
printf '%s\\n' ${quoteArg(conf)} > "$HOME"/${SESSION_DIR}/tmux.conf
${CHANGE_HOOKS.map((hook) => `${tmux(hook)} 2> /dev/null`).join('\n')}
${tmux(
  '-f',
  `"$HOME"/${SESSION_DIR}/tmux.conf`,
  'new-session',
  '-d',
  '-s',
  name,
  '-x',
  '160',
  '-y',
  '48',
  '-c',
  options.cwd ? shellPath(options.cwd) : '"$HOME"',
  inner,
  '\\;',
  // The commands after new-session act on the session it made (no -t: `=name` is not a valid option target).
  'set-option',
  '@pixels_kind',
  options.kind,
  '\\;',
  'set-option',
  '@pixels_command',
  quoteArg(label),
  // A persistent terminal ends with its shell (`exit`), like any terminal; an agent's last output stays.
  ...(options.kind === 'terminal' ? ['\\;', 'set-option', '-w', 'remain-on-exit', 'off'] : []),
)} || { rm -f ${envFile}; exit 1; }
${tmux('wait-for', '-S', CHANGED_CHANNEL)} || true
`;
}

/**
 * Returns when a session changed (started, ended, its program exited, a client attached or detached), when the
 * tmux server ended, or after WATCH_SECONDS; the caller lists again. A change signalled while nobody waited makes
 * the next wait return at once, so nothing is missed between two waits.
 */
export const WATCH_SESSIONS_COMMAND = `timeout ${WATCH_SECONDS} ${tmux('wait-for', CHANGED_CHANNEL)}`;

const FIELDS = [
  '#{session_name}',
  '#{session_created}',
  '#{pane_dead}',
  '#{pane_dead_status}',
  '#{session_attached}',
  '#{@pixels_kind}',
  '#{@pixels_exit}',
  '#{@pixels_command}',
];

/** Field separator of the listing: printable (tmux turns a tab into `_` without a UTF-8 locale); names cannot hold it. */
const SEP = '|';

/**
 * Lists every session in one call (first line says whether tmux is there). No server running = none; so is a server
 * that exits while it answers (it does when its last session ends: "server exited unexpectedly").
 */
export const LIST_SESSIONS_SCRIPT = `command -v tmux > /dev/null 2>&1 || { echo ${quoteArg(LIST_NO_TMUX)}; exit 0; }
if out=$(${tmux('-u', 'list-sessions', '-F', quoteArg(FIELDS.join(SEP)))} 2>&1); then
  printf '%s\\n%s\\n' ${quoteArg(LIST_OK)} "$out"; exit 0
fi
case "$out" in
  *'no server running'* | *'error connecting to'* | *'No such file or directory'* | *'server exited'* | *'lost server'*)
    echo ${quoteArg(LIST_OK)}; exit 0 ;;
esac
printf '%s\\n' "$out" >&2
exit 1
`;

/** Parses the list script's output. Throws on output it does not recognise (never guesses). */
export function parseSessionList(stdout: string): SessionList {
  const lines = stdout.split('\n').filter((l) => l !== '');
  if (lines[0] === LIST_NO_TMUX) return { tmux: false, sessions: [] };
  if (lines[0] !== LIST_OK)
    throw new ValidationError(
      `Unexpected answer when listing sessions: ${JSON.stringify(stdout.slice(0, 200))}`,
    );
  const sessions = lines.slice(1).map((line): SessionInfo => {
    const parts = line.split(SEP);
    if (parts.length < FIELDS.length)
      throw new ValidationError(`Unexpected session line: ${JSON.stringify(line.slice(0, 200))}`);
    const [name, created, dead, paneStatus, attached, kind, exit] = parts;
    const status = exit !== '' ? exit : paneStatus;
    const command = parts.slice(FIELDS.length - 1).join(SEP);
    const seconds = Number(created);
    if (!Number.isFinite(seconds))
      throw new ValidationError(`Unexpected session start time: ${JSON.stringify(created)}`);
    // The exit code is set by the session's own shell as its last act: its program has ended even if the pane
    // (about to close) is not dead yet.
    const running = dead !== '1' && exit === '';
    const code = Number(status);
    return {
      name,
      running,
      ...(!running && status !== '' && Number.isInteger(code) ? { exitCode: code } : {}),
      createdAt: new Date(seconds * 1000),
      attached: Number(attached) || 0,
      ...(kind === 'agent' || kind === 'terminal' || kind === 'command' ? { kind } : {}),
      ...(command ? { command } : {}),
    };
  });
  sessions.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.name.localeCompare(b.name));
  return { tmux: true, sessions };
}

/** Run on a pty: attaches to the session; when the channel closes, tmux's client detaches and the session stays. */
export function attachSessionCommand(name: string): string {
  return `exec ${tmux('-u', 'attach-session', '-t', target(name))}`;
}

/** Ends a session (its program gets SIGHUP). Fails when there is no such session. */
export function stopSessionCommand(name: string): string {
  return tmux('kill-session', '-t', target(name));
}

/** As root: installs tmux with apt when it is missing (the sandbox's configured sources or mirror). */
export const INSTALL_TMUX_SCRIPT = `set -eu
if command -v tmux > /dev/null 2>&1; then echo 'tmux is already installed'; exit 0; fi
command -v apt-get > /dev/null 2>&1 || { echo 'this sandbox has no apt-get: install tmux with its package manager' >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
echo 'installing tmux'
apt-get install -y -q --no-install-recommends tmux || { apt-get update -q && apt-get install -y -q --no-install-recommends tmux; }
command -v tmux > /dev/null 2>&1
`;
