// Helpers for generating bash safely: every value that reaches a generated script goes through one of these.
import { createHash } from 'node:crypto';

/** Single-quotes a value for bash; safe for any string without NUL. */
export function shq(value: string): string {
  if (value.includes('\0')) throw new Error('a shell value cannot contain NUL');
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A heredoc delimiter that cannot occur in `content`. Derived from the content, so the same content always gives
 * the same script (step hashes must be stable).
 */
export function heredocDelimiter(content: string, stem = 'PIXELS_EOF'): string {
  const digest = createHash('sha256').update(content).digest('hex');
  for (let i = 0; ; i++) {
    const delimiter = `${stem}_${digest.slice(i, i + 12)}`;
    if (!content.includes(delimiter)) return delimiter;
  }
}

export interface FileSpec {
  path: string;
  content: string;
  /** Octal file mode, e.g. 0o644. */
  mode: number;
  uid?: number;
  gid?: number;
}

/**
 * Bash that writes a file atomically (temp file + rename) with its mode and owner. Quoted heredoc: the content is
 * taken literally, nothing in it is expanded.
 */
export function writeFileScript(file: FileSpec): string {
  const body = file.content.endsWith('\n') ? file.content : `${file.content}\n`;
  const delimiter = heredocDelimiter(body);
  const tmp = `${file.path}.pixels-tmp`;
  const owner = `${file.uid ?? 0}:${file.gid ?? 0}`;
  return [
    `mkdir -p ${shq(dirname(file.path))}`,
    `cat > ${shq(tmp)} <<'${delimiter}'`,
    body + delimiter,
    `chmod ${file.mode.toString(8).padStart(4, '0')} ${shq(tmp)} && chown ${owner} ${shq(tmp)} && mv -f ${shq(tmp)} ${shq(file.path)}`,
  ].join('\n');
}

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
