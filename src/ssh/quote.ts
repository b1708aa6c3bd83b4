// POSIX shell quoting for commands sent over SSH. The server runs the one string we send through the user's
// shell, so every argument is wrapped in single quotes (only `'` itself needs care). pixels space-joins argv
// and lets the remote shell re-split it, which loses quoting; we always send one correctly quoted string.

/** Quotes one argument so that a POSIX shell reads it back byte for byte (empty string becomes `''`). */
export function quoteArg(arg: string): string {
  if (arg.includes('\0')) throw new TypeError('A shell argument cannot contain a NUL byte.');
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quotes every element of argv and joins them with spaces: one string the remote shell splits back into argv. */
export function quoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('A command needs at least one argument.');
  return argv.map(quoteArg).join(' ');
}

/**
 * A command run by bash as a login shell (so the user's profile, PATH and tool shims apply).
 * A string is taken as a shell command line; argv is quoted first.
 */
export function loginShellCommand(command: string | readonly string[]): string {
  const script = typeof command === 'string' ? command : quoteCommand(command);
  return quoteCommand(['bash', '-lc', script]);
}
