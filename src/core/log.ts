// A vscode-free logger interface; the editor layer backs it with a LogOutputChannel. Everything logged
// passes through `redact` first so API keys and private keys never reach a log.

export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

const secrets = new Set<string>();

/** Registers a secret value (an API key) so that `redact` removes it wherever it appears. */
export function registerSecret(value: string): void {
  if (value.length >= 8) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('«redacted»');
  return (
    out
      .replace(/("api_key"\s*:\s*")[^"]*(")/g, '$1«redacted»$2')
      .replace(/("password"\s*:\s*")[^"]*(")/g, '$1«redacted»$2')
      // A sandbox's environment variables ([env] values) may hold tokens: the names stay out of logs too.
      .replace(/("environment"\s*:\s*\{)(?:[^{}"]|"(?:[^"\\]|\\.)*")*(\})/g, '$1«redacted»$2')
      .replace(
        /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
        '«private key redacted»',
      )
  );
}
