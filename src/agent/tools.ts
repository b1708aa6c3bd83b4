// The agent tool catalog: one implementation behind the VS Code language model tools and the MCP server. Names and
// arguments follow pixels' MCP server where it has the tool; checkpoints, restore and clone are ours. Every call
// is validated against its schema, calls about one sandbox are serialised, and errors say what to do next.
import { randomBytes } from 'node:crypto';
import { NotFoundError, PixelsError, UnsupportedError, ValidationError } from '../core/errors';
import { defaultCheckpointLabel, validateCheckpointLabel, validateSandboxName } from '../core/names';
import { INSTANCE_PREFIX, type Checkpoint, type OperationOptions, type Sandbox } from '../core/sandbox';
import { deleteFile, editFile, listFiles, MAX_FILE_BYTES, MiB, readFile, writeFile } from './files';
import type { AgentHost, CallContext, SandboxRef } from './host';
import { KeyedQueue } from './queue';
import type { ObjectSchema, JsonSchema } from './schema';
import { validateInput } from './schema';

export const EXEC_DEFAULT_TIMEOUT_SEC = 120;
export const EXEC_MAX_TIMEOUT_SEC = 600;
export const EXEC_MAX_OUTPUT_BYTES = MiB;
const READ_DEFAULT_BYTES = MiB;

/** What will happen, for a confirmation before a state-changing call (shown by VS Code; MCP clients ask their own). */
export interface Confirmation {
  title: string;
  message: string;
}

/** A call's cancellation and progress sink (the MCP server's notifications/progress; none for LM tools). */
export type ToolContext = CallContext;

export interface AgentTool {
  name: string;
  title: string;
  description: string;
  inputSchema: ObjectSchema;
  /** Reads only: no confirmation, MCP readOnlyHint. */
  readOnly: boolean;
  /** May destroy or overwrite data (MCP destructiveHint). */
  destructive: boolean;
  /** Calling it twice with the same input does no more than once (MCP idempotentHint). */
  idempotent: boolean;
  /** Plain-language description of what a call will do; side-effect free (reads only). Absent for read tools. */
  confirm?(input: Record<string, unknown>): Promise<Confirmation>;
  run(input: Record<string, unknown>, context: ToolContext): Promise<unknown>;
}

/**
 * What a tool does, as its three hints: reads only; adds something new; sets a state (again: no change);
 * overwrites what is there (again: the same result); destroys or runs something (again: more of it).
 */
type Effect = 'reads' | 'adds' | 'sets' | 'overwrites' | 'destroys';
type Hints = Pick<AgentTool, 'readOnly' | 'destructive' | 'idempotent'>;
const EFFECT: Record<Effect, Hints> = {
  reads: { readOnly: true, destructive: false, idempotent: true },
  adds: { readOnly: false, destructive: false, idempotent: false },
  sets: { readOnly: false, destructive: false, idempotent: true },
  overwrites: { readOnly: false, destructive: true, idempotent: true },
  destroys: { readOnly: false, destructive: true, idempotent: false },
};

const name: JsonSchema = {
  type: 'string',
  minLength: 1,
  description: 'Sandbox name, without the "px-" prefix.',
};
const server: JsonSchema = {
  type: 'string',
  description:
    'Server id or label; needed only when several servers are configured and the name is on more than one.',
};
const path: JsonSchema = { type: 'string', minLength: 1, description: 'Absolute path inside the sandbox.' };

function schema(properties: Record<string, JsonSchema>, required: string[]): ObjectSchema {
  return { type: 'object', properties, required, additionalProperties: false };
}

function str(input: Record<string, unknown>, key: string): string | undefined {
  const v = input[key];
  return typeof v === 'string' ? v : undefined;
}

function mustStr(input: Record<string, unknown>, key: string): string {
  return str(input, key) ?? '';
}

/** A backend operation's options from a call's: the server job's progress reported as a line. */
function operation(context: ToolContext): OperationOptions {
  const progress = context.progress;
  return {
    signal: context.signal,
    onProgress: progress
      ? (r) => {
          const line = [r.description, r.percent === undefined ? '' : `${r.percent}%`]
            .filter(Boolean)
            .join(' ');
          if (line) progress(line);
        }
      : undefined,
  };
}

function iso(date: Date | undefined): string | undefined {
  return date && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
}

/** The catalog over one host. */
export class AgentToolCatalog {
  private readonly queue = new KeyedQueue();
  readonly tools: readonly AgentTool[];

  constructor(private readonly host: AgentHost) {
    this.tools = this.build();
  }

  tool(toolName: string): AgentTool | undefined {
    return this.tools.find((t) => t.name === toolName);
  }

  /** Validates and runs one call. Errors are PixelsErrors whose message tells the model what to do next. */
  async call(toolName: string, input: unknown, context: ToolContext = {}): Promise<unknown> {
    const tool = this.tool(toolName);
    if (!tool) throw new NotFoundError(`There is no tool "${toolName}".`);
    const args = validateInput<Record<string, unknown>>(tool.inputSchema, input, tool.name);
    return tool.run(args, context);
  }

  /** The confirmation for a call, after validating it (undefined for read-only tools). */
  async confirmation(toolName: string, input: unknown): Promise<Confirmation | undefined> {
    const tool = this.tool(toolName);
    if (!tool?.confirm) return undefined;
    return tool.confirm(validateInput<Record<string, unknown>>(tool.inputSchema, input, tool.name));
  }

  // --- resolution -------------------------------------------------------------------------------------------

  private serverLabel(serverId: string): string {
    return this.host.servers().find((s) => s.id === serverId)?.label ?? serverId;
  }

  private serverFor(given: string | undefined): string {
    const servers = this.host.servers();
    if (servers.length === 0)
      throw new UnsupportedError(
        'No Pixels server is configured. Ask the user to add one with "Pixels: Add Server…" in VS Code.',
      );
    if (given !== undefined) {
      const match = servers.find((s) => s.id === given) ?? servers.find((s) => s.label === given);
      if (!match)
        throw new NotFoundError(
          `There is no server "${given}". Configured servers: ${servers.map((s) => `${s.label} (id ${s.id})`).join(', ')}.`,
        );
      return match.id;
    }
    if (servers.length > 1)
      throw new ValidationError(
        `Several servers are configured (${servers.map((s) => s.label).join(', ')}): pass "server" to say which.`,
      );
    return servers[0]!.id;
  }

  /** The server the caller named, or every configured one. */
  private serversFor(given: string | undefined): string[] {
    return given !== undefined ? [this.serverFor(given)] : this.host.servers().map((s) => s.id);
  }

  /** The server holding sandbox `sandbox` (searching every server when none is given). */
  private async locate(sandbox: string, given: string | undefined): Promise<SandboxRef> {
    validateSandboxName(sandbox);
    const candidates = this.serversFor(given);
    if (candidates.length === 0) this.serverFor(undefined);
    const found: string[] = [];
    for (const serverId of candidates) {
      const backend = await this.host.backend(serverId);
      const exists = await backend.get(sandbox).then(
        () => true,
        (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
      );
      if (exists) found.push(serverId);
    }
    if (found.length === 1) return { serverId: found[0]!, name: sandbox };
    if (found.length > 1)
      throw new ValidationError(
        `A sandbox "${sandbox}" exists on several servers (${found.map((id) => this.serverLabel(id)).join(', ')}): pass "server" to say which.`,
      );
    const hint = sandbox.startsWith(INSTANCE_PREFIX)
      ? ` Names are given without the "${INSTANCE_PREFIX}" prefix: try "${sandbox.slice(INSTANCE_PREFIX.length)}".`
      : '';
    throw new NotFoundError(
      `There is no sandbox "${sandbox}". Call list_sandboxes to see the sandboxes.${hint}`,
    );
  }

  /** Runs `work` after every other call about this sandbox; an agent's action restarts its idle time. */
  private serial<T>(ref: SandboxRef, work: () => Promise<T>): Promise<T> {
    return this.queue.run(`${ref.serverId}\n${ref.name}`, async () => {
      const result = await work();
      await this.host.lifecycle?.touched(ref.serverId, ref.name).catch(() => undefined);
      return result;
    });
  }

  private async running(ref: SandboxRef): Promise<Sandbox> {
    const sandbox = await (await this.host.backend(ref.serverId)).get(ref.name);
    if (sandbox.status !== 'running')
      throw new ValidationError(
        `Sandbox "${ref.name}" is ${sandbox.status}, not running. Start it with start_sandbox first.`,
      );
    return sandbox;
  }

  /** Runs `work` with a runner for a running sandbox, serialised per sandbox. */
  private withRunner<T>(
    input: Record<string, unknown>,
    context: ToolContext,
    work: (runner: Awaited<ReturnType<AgentHost['runner']>>, ref: SandboxRef) => Promise<T>,
  ): Promise<T> {
    return this.locate(mustStr(input, 'name'), str(input, 'server')).then((ref) =>
      this.serial(ref, async () => {
        await this.running(ref);
        return work(await this.host.runner(ref, context.signal), ref);
      }),
    );
  }

  private async checkpoints(ref: SandboxRef): Promise<Checkpoint[]> {
    return (await this.host.backend(ref.serverId)).listCheckpoints(ref.name);
  }

  private changed(serverId: string): void {
    this.host.changed?.(serverId);
  }

  private where(ref: SandboxRef): string {
    return this.host.servers().length > 1 ? ` on ${this.serverLabel(ref.serverId)}` : '';
  }

  // --- the tools ----------------------------------------------------------------------------------------------

  private build(): AgentTool[] {
    const host = this.host;
    const tools: AgentTool[] = [
      {
        name: 'list_sandboxes',
        title: 'List Sandboxes',
        description:
          'List the Pixels sandboxes (disposable Linux containers) on every configured server, with status, IP address, image and their checkpoints (newest first).',
        inputSchema: schema({ server }, []),
        ...EFFECT.reads,
        run: async (input) => {
          const given = str(input, 'server');
          const ids = this.serversFor(given);
          if (ids.length === 0) this.serverFor(undefined);
          const sandboxes = [];
          for (const serverId of ids) {
            const list = await (await host.backend(serverId)).list();
            for (const s of list)
              sandboxes.push({
                name: s.name,
                server: this.serverLabel(serverId),
                status: s.status,
                ip: s.ipv4 ?? s.ipv6,
                image: s.image,
                created_at: iso(s.createdAt),
                checkpoints: (s.checkpoints ?? []).map((c) => c.label),
              });
          }
          return { sandboxes };
        },
      },
      {
        name: 'list_bases',
        title: 'List Bases',
        description:
          'List the bases: ready-made sandboxes that create_sandbox can clone from (pass "base"), which is much faster than creating from an image.',
        inputSchema: schema({ server }, []),
        ...EFFECT.reads,
        run: async (input) => {
          const given = str(input, 'server');
          const ids = this.serversFor(given);
          const bases = [];
          if (host.bases)
            for (const serverId of ids)
              for (const b of await host.bases.list(serverId))
                bases.push({
                  name: b.name,
                  server: this.serverLabel(serverId),
                  description: b.description,
                  status: b.status,
                  error: b.error,
                  last_checkpoint: b.lastCheckpoint,
                });
          return { bases };
        },
      },
      {
        name: 'list_checkpoints',
        title: 'List Checkpoints',
        description:
          'List the checkpoints of a sandbox, newest first, with when each was taken. restore_checkpoint and clone_sandbox take these labels.',
        inputSchema: schema({ name, server }, ['name']),
        ...EFFECT.reads,
        run: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const list = await this.checkpoints(ref);
          return {
            checkpoints: list.map((c) => ({
              label: c.label,
              created_at: iso(c.createdAt),
              size_bytes: c.sizeBytes,
            })),
          };
        },
      },
      {
        name: 'create_sandbox',
        title: 'Create Sandbox',
        description:
          'Create a new sandbox and wait until it is ready (provisioned and network-locked as the user configured). Pass "base" to clone a ready-made base (fast; see list_bases), or "image" for an image alias (slower). Returns its name and IP address.',
        inputSchema: schema(
          {
            name: {
              type: 'string',
              description:
                'Name for the new sandbox (lowercase letters, digits and dashes); a random "agent-…" name when absent.',
            },
            label: {
              type: 'string',
              description: 'Accepted for pixels compatibility; used as the name when "name" is absent.',
            },
            image: { type: 'string', description: "Image alias; the user's default image when absent." },
            base: { type: 'string', description: 'A base from list_bases to clone from.' },
            server,
          },
          [],
        ),
        ...EFFECT.adds,
        confirm: async (input) => {
          const given = str(input, 'name') ?? str(input, 'label');
          const n = given !== undefined ? `"${given}"` : 'with a generated "agent-…" name';
          const serverId = this.serverFor(str(input, 'server'));
          const from = str(input, 'base')
            ? `from base "${str(input, 'base')}"`
            : `from image ${str(input, 'image') ?? '(the default image)'}`;
          return {
            title: 'Create a sandbox?',
            message: `Creates a new sandbox ${n} on ${this.serverLabel(serverId)} ${from}. Nothing existing is changed.`,
          };
        },
        run: async (input, context) => {
          const n = this.newName(input);
          validateSandboxName(n);
          const serverId = this.serverFor(str(input, 'server'));
          const base = str(input, 'base');
          if (base !== undefined && str(input, 'image') !== undefined)
            throw new ValidationError('Pass either "base" or "image", not both.');
          const ref = { serverId, name: n };
          const sandbox = await this.serial(ref, async () => {
            if (base !== undefined) {
              if (!host.bases)
                throw new UnsupportedError(
                  'Bases are not available on this server yet. Create from an image instead (omit "base").',
                );
              return host.bases.createFrom(serverId, base, n, context);
            }
            const made = await host.workflows.create(serverId, n, str(input, 'image'), context);
            await host.lifecycle?.created(serverId, n);
            return made;
          });
          this.changed(serverId);
          return {
            name: sandbox.name,
            ip: sandbox.ipv4 ?? sandbox.ipv6,
            status: sandbox.status,
            server: this.serverLabel(serverId),
          };
        },
      },
      {
        name: 'destroy_sandbox',
        title: 'Destroy Sandbox',
        description:
          'Destroy a sandbox and all its checkpoints. Everything in it is lost; this cannot be undone.',
        inputSchema: schema({ name, server }, ['name']),
        ...EFFECT.destroys,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const cps = await this.checkpoints(ref);
          const lost = cps.length
            ? ` and its ${cps.length} checkpoint${cps.length === 1 ? '' : 's'} (${cps.map((c) => c.label).join(', ')})`
            : '';
          return {
            title: `Destroy sandbox "${ref.name}"?`,
            message: `Destroys sandbox "${ref.name}"${this.where(ref)}${lost}. Everything in it is lost and cannot be recovered.`,
          };
        },
        run: async (input, context) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          await this.queue.run(`${ref.serverId}\n${ref.name}`, () => host.workflows.destroy(ref, context));
          await host.lifecycle?.destroyed(ref.serverId, ref.name);
          this.changed(ref.serverId);
          return { ok: true };
        },
      },
      {
        name: 'start_sandbox',
        title: 'Start Sandbox',
        description: 'Start a stopped sandbox. Returns its IP address once running.',
        inputSchema: schema({ name, server }, ['name']),
        ...EFFECT.sets,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          return {
            title: `Start sandbox "${ref.name}"?`,
            message: `Starts sandbox "${ref.name}"${this.where(ref)}.`,
          };
        },
        run: async (input, context) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const sandbox = await this.serial(ref, async () => {
            const backend = await host.backend(ref.serverId);
            if ((await backend.get(ref.name)).status !== 'running')
              await backend.start(ref.name, operation(context));
            return backend.get(ref.name);
          });
          this.changed(ref.serverId);
          return { name: sandbox.name, ip: sandbox.ipv4 ?? sandbox.ipv6, status: sandbox.status };
        },
      },
      {
        name: 'stop_sandbox',
        title: 'Stop Sandbox',
        description:
          'Stop a running sandbox (a clean shutdown). Its files and checkpoints are kept; running processes end.',
        inputSchema: schema({ name, server }, ['name']),
        ...EFFECT.sets,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          return {
            title: `Stop sandbox "${ref.name}"?`,
            message: `Shuts down sandbox "${ref.name}"${this.where(ref)}: every process in it ends (terminals, agents, servers). Its files and checkpoints are kept.`,
          };
        },
        run: async (input, context) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          await this.serial(ref, async () => {
            const backend = await host.backend(ref.serverId);
            if ((await backend.get(ref.name)).status !== 'stopped')
              await backend.stop(ref.name, {}, operation(context));
          });
          this.changed(ref.serverId);
          return { ok: true };
        },
      },
      {
        name: 'exec',
        title: 'Run Command in Sandbox',
        description: `Run a command (argv, no shell unless you call one, e.g. ["bash","-lc","npm test"]) as root inside a running sandbox. Returns exit_code, stdout and stderr; a failing command is not an error. Output beyond ${EXEC_MAX_OUTPUT_BYTES / MiB} MiB per stream is cut (the end is kept) and said. timeout_sec defaults to ${EXEC_DEFAULT_TIMEOUT_SEC}, at most ${EXEC_MAX_TIMEOUT_SEC}.`,
        inputSchema: schema(
          {
            name,
            command: {
              type: 'array',
              items: { type: 'string' },
              minItems: 1,
              description: 'The argv to run.',
            },
            cwd: { type: 'string', description: 'Working directory (absolute).' },
            env: {
              type: 'object',
              additionalProperties: { type: 'string' },
              description: 'Extra environment variables.',
            },
            timeout_sec: {
              type: 'integer',
              description: `Seconds before the command is killed (default ${EXEC_DEFAULT_TIMEOUT_SEC}, at most ${EXEC_MAX_TIMEOUT_SEC}).`,
            },
            server,
          },
          ['name', 'command'],
        ),
        ...EFFECT.destroys,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const argv = input.command as string[];
          const cwd = str(input, 'cwd');
          return {
            title: `Run a command in "${ref.name}"?`,
            message: `Runs \`${argv.map((a) => JSON.stringify(a)).join(' ')}\` as root in sandbox "${ref.name}"${this.where(ref)}${cwd ? ` in ${cwd}` : ''}, for at most ${this.timeoutOf(input)} s. It can change anything inside the sandbox (not outside it).`,
          };
        },
        run: async (input, context) => {
          const argv = input.command as string[];
          const env = (input.env ?? {}) as Record<string, string>;
          for (const key of Object.keys(env))
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
              throw new ValidationError(
                `"${key}" is not a valid environment variable name (letters, digits, _).`,
              );
          const cwd = str(input, 'cwd');
          if (cwd !== undefined && !cwd.startsWith('/'))
            throw new ValidationError(
              `cwd "${cwd}" is not absolute. Give the full path, e.g. /root/project.`,
            );
          // env would take a program name with "=" for a variable.
          if (argv[0]!.includes('='))
            throw new ValidationError(
              `"${argv[0]}" is not a program name; give the program first in command.`,
            );
          const timeoutSec = this.timeoutOf(input);
          // Bounded inside the sandbox (so the command really ends), then env sets the directory and variables
          // (after "--", which must come before the assignments: env stops reading options at the first one).
          const wrapped = [
            'timeout',
            '--kill-after=5',
            String(timeoutSec),
            'env',
            ...(cwd ? ['-C', cwd] : []),
            '--',
            ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
            ...argv,
          ];
          return this.withRunner(input, context, async (runner) => {
            const started = Date.now();
            const r = await runner
              .run(wrapped, {
                timeoutMs: (timeoutSec + 30) * 1000,
                maxOutputBytes: EXEC_MAX_OUTPUT_BYTES,
                signal: context.signal,
              })
              .catch((err: unknown) => {
                // The Incus exec API reports exit status 127 as a failed operation, not as an exit code.
                if (err instanceof PixelsError && /command not found/i.test(err.message))
                  throw new ValidationError(
                    `"${argv[0]}" was not found in the sandbox (exit status 127). Install it, or give its full path.`,
                  );
                throw err;
              });
            const elapsedMs = Date.now() - started;
            const timedOut =
              (r.exitCode === 124 || r.exitCode === 137) && elapsedMs >= timeoutSec * 1000 - 500;
            const stderr = r.stderr.toString('utf8');
            const cwdMissing =
              cwd !== undefined && r.exitCode === 125 && stderr.includes('cannot change directory');
            const notFound = r.exitCode === 127 && /No such file or directory/.test(stderr);
            const result: Record<string, unknown> = {
              exit_code: r.exitCode,
              stdout: r.stdout.toString('utf8'),
              stderr,
              user: runner.user,
              duration_ms: elapsedMs,
            };
            if (r.signal) result.signal = r.signal;
            if (timedOut)
              result.timed_out = `The command was killed after ${timeoutSec} s. Pass a larger timeout_sec (at most ${EXEC_MAX_TIMEOUT_SEC}) or run it in the background.`;
            if (r.stdoutTruncated || r.stderrTruncated)
              result.truncated = `Output was longer than ${EXEC_MAX_OUTPUT_BYTES / MiB} MiB on ${[r.stdoutTruncated && 'stdout', r.stderrTruncated && 'stderr'].filter(Boolean).join(' and ')}; only the end is shown. Redirect it to a file and read parts with read_file.`;
            if (cwdMissing) result.hint = `The directory ${cwd} does not exist in the sandbox.`;
            if (notFound)
              result.hint = `"${argv[0]}" was not found in the sandbox's PATH. Install it, or give its full path.`;
            return result;
          });
        },
      },
      {
        name: 'write_file',
        title: 'Write File in Sandbox',
        description: `Write a text file inside a running sandbox (replacing it if it exists; parent directories are made). Owned by uid/gid 1000. At most ${MAX_FILE_BYTES / MiB} MiB.`,
        inputSchema: schema(
          {
            name,
            path,
            content: { type: 'string', description: 'The whole file content (UTF-8).' },
            mode: { type: 'string', description: 'Octal permission bits, default "0644".' },
            server,
          },
          ['name', 'path', 'content'],
        ),
        ...EFFECT.overwrites,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          return {
            title: `Write ${mustStr(input, 'path')} in "${ref.name}"?`,
            message: `Writes ${Buffer.byteLength(mustStr(input, 'content'))} bytes to ${mustStr(input, 'path')} in sandbox "${ref.name}"${this.where(ref)}; an existing file there is replaced.`,
          };
        },
        run: async (input, context) => {
          const mode = str(input, 'mode');
          if (mode !== undefined && !/^0?[0-7]{3,4}$/.test(mode))
            throw new ValidationError(`mode "${mode}" is not an octal permission like "0644" or "755".`);
          const content = Buffer.from(mustStr(input, 'content'), 'utf8');
          return this.withRunner(input, context, async (runner) => {
            await writeFile(runner, mustStr(input, 'path'), content, mode);
            return { ok: true, bytes_written: content.length };
          });
        },
      },
      {
        name: 'read_file',
        title: 'Read File in Sandbox',
        description: `Read a text file inside a running sandbox: its first max_bytes (default ${READ_DEFAULT_BYTES / MiB} MiB, at most ${MAX_FILE_BYTES / MiB} MiB); "truncated" says when there is more.`,
        inputSchema: schema(
          {
            name,
            path,
            max_bytes: {
              type: 'integer',
              minimum: 1,
              description: `Bytes to read at most (default ${READ_DEFAULT_BYTES}).`,
            },
            server,
          },
          ['name', 'path'],
        ),
        ...EFFECT.reads,
        run: async (input, context) => {
          const max = Math.min(
            typeof input.max_bytes === 'number' ? input.max_bytes : READ_DEFAULT_BYTES,
            MAX_FILE_BYTES,
          );
          return this.withRunner(input, context, async (runner) => {
            const r = await readFile(runner, mustStr(input, 'path'), max);
            return { content: r.content, truncated: r.truncated, size: r.size };
          });
        },
      },
      {
        name: 'list_files',
        title: 'List Files in Sandbox',
        description:
          'List the entries of a directory inside a running sandbox (path, size, octal mode, is_dir); "recursive" lists the whole tree (at most 5000 entries).',
        inputSchema: schema(
          { name, path, recursive: { type: 'boolean', description: 'List subdirectories too.' }, server },
          ['name', 'path'],
        ),
        ...EFFECT.reads,
        run: async (input, context) =>
          this.withRunner(input, context, (runner) =>
            listFiles(runner, mustStr(input, 'path'), input.recursive === true),
          ),
      },
      {
        name: 'edit_file',
        title: 'Edit File in Sandbox',
        description:
          'Replace old_string with new_string in a file inside a running sandbox. old_string must match exactly once unless replace_all is true. The file keeps its mode and owner.',
        inputSchema: schema(
          {
            name,
            path,
            old_string: { type: 'string', minLength: 1, description: 'The exact text to replace.' },
            new_string: { type: 'string', description: 'The replacement.' },
            replace_all: { type: 'boolean', description: 'Replace every occurrence.' },
            server,
          },
          ['name', 'path', 'old_string', 'new_string'],
        ),
        ...EFFECT.destroys,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          return {
            title: `Edit ${mustStr(input, 'path')} in "${ref.name}"?`,
            message: `Replaces ${input.replace_all === true ? 'every occurrence' : 'the one occurrence'} of the given text in ${mustStr(input, 'path')} in sandbox "${ref.name}"${this.where(ref)}.`,
          };
        },
        run: async (input, context) =>
          this.withRunner(input, context, async (runner) => ({
            ok: true,
            replacements: await editFile(
              runner,
              mustStr(input, 'path'),
              mustStr(input, 'old_string'),
              mustStr(input, 'new_string'),
              input.replace_all === true,
            ),
          })),
      },
      {
        name: 'delete_file',
        title: 'Delete File in Sandbox',
        description:
          'Delete a file inside a running sandbox; a directory only with recursive true (with everything in it).',
        inputSchema: schema(
          {
            name,
            path,
            recursive: { type: 'boolean', description: 'Delete a directory and everything in it.' },
            server,
          },
          ['name', 'path'],
        ),
        ...EFFECT.overwrites,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          return {
            title: `Delete ${mustStr(input, 'path')} in "${ref.name}"?`,
            message: `Deletes ${mustStr(input, 'path')}${input.recursive === true ? ' and everything under it' : ''} in sandbox "${ref.name}"${this.where(ref)}. A checkpoint taken before still has it.`,
          };
        },
        run: async (input, context) =>
          this.withRunner(input, context, async (runner) => {
            await deleteFile(runner, mustStr(input, 'path'), input.recursive === true);
            return { ok: true };
          }),
      },
      {
        name: 'create_checkpoint',
        title: 'Checkpoint Sandbox',
        description:
          'Take a checkpoint (snapshot) of a sandbox, to go back to with restore_checkpoint or to clone with clone_sandbox. Returns its label.',
        inputSchema: schema(
          {
            name,
            label: { type: 'string', description: 'Checkpoint label; "px-<date>-<time>" when absent.' },
            server,
          },
          ['name'],
        ),
        ...EFFECT.adds,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          return {
            title: `Checkpoint "${ref.name}"?`,
            message: `Takes checkpoint "${str(input, 'label') ?? defaultCheckpointLabel()}" of sandbox "${ref.name}"${this.where(ref)}. Nothing is changed in the sandbox.`,
          };
        },
        run: async (input) => {
          const label = str(input, 'label') ?? defaultCheckpointLabel();
          validateCheckpointLabel(label);
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const checkpoint = await this.serial(ref, async () => {
            if ((await this.checkpoints(ref)).some((c) => c.label === label))
              throw new ValidationError(
                `Sandbox "${ref.name}" has a checkpoint "${label}" already. Choose another label, or omit it.`,
              );
            return (await host.backend(ref.serverId)).createCheckpoint(ref.name, label);
          });
          this.changed(ref.serverId);
          return { label: checkpoint.label, created_at: iso(checkpoint.createdAt) };
        },
      },
      {
        name: 'restore_checkpoint',
        title: 'Restore Checkpoint',
        description:
          'Put a sandbox back to a checkpoint: everything changed since is lost, and checkpoints newer than it are deleted. The sandbox restarts.',
        inputSchema: schema(
          {
            name,
            checkpoint: { type: 'string', minLength: 1, description: 'Label from list_checkpoints.' },
            server,
          },
          ['name', 'checkpoint'],
        ),
        ...EFFECT.destroys,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const label = mustStr(input, 'checkpoint');
          const newer = this.newerThan(await this.checkpoints(ref), ref, label);
          return {
            title: `Restore "${ref.name}" to "${label}"?`,
            message:
              `Restores sandbox "${ref.name}"${this.where(ref)} to checkpoint "${label}": every change made since is lost` +
              (newer.length
                ? `, and the newer checkpoint${newer.length === 1 ? '' : 's'} ${newer.join(', ')} ${newer.length === 1 ? 'is' : 'are'} deleted.`
                : '.'),
          };
        },
        run: async (input, context) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const label = mustStr(input, 'checkpoint');
          const deleted = await this.serial(ref, async () => {
            const newer = this.newerThan(await this.checkpoints(ref), ref, label);
            await host.workflows.restore(ref, label, context);
            return newer;
          });
          this.changed(ref.serverId);
          return { ok: true, deleted_checkpoints: deleted };
        },
      },
      {
        name: 'clone_sandbox',
        title: 'Clone Sandbox',
        description:
          'Make a new sandbox from a checkpoint of another (or from its current state when no checkpoint is given). The source is not changed.',
        inputSchema: schema(
          {
            name,
            new_name: { type: 'string', minLength: 1, description: 'Name of the new sandbox.' },
            checkpoint: {
              type: 'string',
              description: 'Label from list_checkpoints; the current state when absent.',
            },
            server,
          },
          ['name', 'new_name'],
        ),
        ...EFFECT.adds,
        confirm: async (input) => {
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const cp = str(input, 'checkpoint');
          return {
            title: `Clone "${ref.name}"?`,
            message: `Creates sandbox "${mustStr(input, 'new_name')}"${this.where(ref)} from ${cp ? `checkpoint "${cp}" of` : 'the current state of'} "${ref.name}". "${ref.name}" is not changed.`,
          };
        },
        run: async (input, context) => {
          const newName = mustStr(input, 'new_name');
          validateSandboxName(newName);
          const ref = await this.locate(mustStr(input, 'name'), str(input, 'server'));
          const cp = str(input, 'checkpoint');
          if (cp !== undefined && !(await this.checkpoints(ref)).some((c) => c.label === cp))
            throw new NotFoundError(
              `Sandbox "${ref.name}" has no checkpoint "${cp}". Call list_checkpoints to see its labels.`,
            );
          const clone = await this.queue.runAll(
            [`${ref.serverId}\n${ref.name}`, `${ref.serverId}\n${newName}`],
            async () => {
              const made = await host.workflows.clone(ref, cp, newName, context);
              await host.lifecycle?.created(ref.serverId, newName);
              return made;
            },
          );
          this.changed(ref.serverId);
          return { name: clone.name, ip: clone.ipv4 ?? clone.ipv6, status: clone.status };
        },
      },
    ];
    return tools;
  }

  private newName(input: Record<string, unknown>): string {
    return str(input, 'name') ?? str(input, 'label') ?? `agent-${randomBytes(3).toString('hex')}`;
  }

  private timeoutOf(input: Record<string, unknown>): number {
    const t = typeof input.timeout_sec === 'number' ? input.timeout_sec : EXEC_DEFAULT_TIMEOUT_SEC;
    return t <= 0 || t > EXEC_MAX_TIMEOUT_SEC ? EXEC_MAX_TIMEOUT_SEC : t;
  }

  private newerThan(checkpoints: Checkpoint[], ref: SandboxRef, label: string): string[] {
    const index = checkpoints.findIndex((c) => c.label === label);
    if (index === -1)
      throw new NotFoundError(
        `Sandbox "${ref.name}" has no checkpoint "${label}". Call list_checkpoints to see its labels.`,
      );
    return checkpoints.slice(0, index).map((c) => c.label);
  }
}

/** The message a model gets for a failed call: the error's sentence (our errors say what to do next). */
export function toolErrorMessage(err: unknown): string {
  if (err instanceof PixelsError) return err.message;
  if (err instanceof Error && err.message) return `Unexpected error: ${err.message.split('\n')[0]}`;
  return 'Unexpected error.';
}
