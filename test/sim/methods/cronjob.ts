// cronjob.* (plugins/cron: crud.py, execute.py): the host-job route a client takes when the API refuses a ZFS
// operation (TrueNAS 26 RC.1's protected container datasets; pixels' 25.x trick). A job's command runs as root on
// the NAS, outside the middleware's checks. The simulator runs only what such a client needs there: `zfs snapshot`,
// `zfs rollback`, `zfs clone` and `zfs destroy` (sequenced with `&&` / `;`), with the zfs CLI's rules and words;
// anything else fails like a missing command (exit 127), so nothing pretends to have run.
import { checkArgCount, validateModel, type Model } from '../args.js';
import type { CallEnv, Registry, SimContext } from '../context.js';
import { EngineError } from '../engine.js';
import type { SimObject, SimValue } from '../ejson.js';
import { CallError, ERRNO, instanceNotFound, ValidationErrors, type ValidationItem } from '../errors.js';
import { query } from '../filters.js';
import { destroyDatasetTree, reapDeferred } from './zfs.js';

interface CronJob {
  id: number;
  enabled: boolean;
  stderr: boolean;
  stdout: boolean;
  schedule: SimObject;
  command: string;
  description: string;
  user: string;
}

const SCHEDULE: Model = {
  minute: { type: 'str', default: '00' },
  hour: { type: 'str', default: '*' },
  dom: { type: 'str', default: '*' },
  month: { type: 'str', default: '*' },
  dow: { type: 'str', default: '*' },
};

function model(update: boolean): Model {
  const m: Model = {
    enabled: { type: 'bool', default: true },
    stderr: { type: 'bool', default: false },
    stdout: { type: 'bool', default: true },
    schedule: { type: 'dict', default: { minute: '00', hour: '*', dom: '*', month: '*', dow: '*' } },
    command: { type: 'str', required: true },
    description: { type: 'str', default: '' },
    user: { type: 'str', required: true },
  };
  if (update) for (const key of Object.keys(m)) m[key] = { ...m[key], required: false, default: undefined };
  return m;
}

function entry(job: CronJob): SimObject {
  return {
    id: job.id,
    enabled: job.enabled,
    stderr: job.stderr,
    stdout: job.stdout,
    schedule: { ...job.schedule },
    command: job.command,
    description: job.description,
    user: job.user,
  };
}

/** crud.py validate(): the user must exist on the NAS, the command must not be empty. */
function validate(ctx: SimContext, schema: string, data: SimObject, errors: ValidationItem[]): void {
  const user = String(data.user);
  const users = new Set(['root', ctx.auth.username]);
  if (user.includes(' ')) errors.push([`${schema}.user`, 'Usernames cannot have spaces', ERRNO.EINVAL]);
  else if (!users.has(user)) errors.push([`${schema}.user`, 'Specified user does not exist', ERRNO.EINVAL]);
  if (!data.command)
    errors.push([`${schema}.command`, 'Please specify a command for cronjob task.', ERRNO.EINVAL]);
}

function parseBody(value: SimValue | undefined, update: boolean): SimObject {
  const errors: ValidationItem[] = [];
  const data = validateModel(value ?? {}, 'data', model(update), errors);
  if (isObject(data.schedule))
    data.schedule = validateModel(data.schedule, 'data.schedule', SCHEDULE, errors);
  if (errors.length) throw new ValidationErrors(errors);
  return data;
}

function isObject(v: SimValue | undefined): v is SimObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

// ------------------------------------------------------------------ a shell that only knows zfs

/** Splits a command line into `&&` / `;` separated words, with sh's single and double quotes. */
function tokenize(command: string): { words: string[]; sep: '&&' | ';' | null }[] {
  const out: { words: string[]; sep: '&&' | ';' | null }[] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i];
    if (ch === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new Error('Syntax error: Unterminated quoted string');
      word += command.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (ch === '"') {
      const end = command.indexOf('"', i + 1);
      if (end < 0) throw new Error('Syntax error: Unterminated quoted string');
      word += command.slice(i + 1, end).replace(/\\(["\\$`])/g, '$1');
      inWord = true;
      i = end;
    } else if (ch === '\\' && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (/\s/.test(ch) || ch === ';' || (ch === '&' && command[i + 1] === '&')) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      if (ch === ';' || ch === '&') {
        out.push({ words, sep: ch === ';' ? ';' : '&&' });
        words = [];
        if (ch === '&') i++;
      }
    } else if ('|<>&$`(){}'.includes(ch)) {
      throw new Error(`the simulator's NAS shell runs plain zfs commands only, not '${ch}'`);
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  out.push({ words, sep: null });
  return out.filter((c) => c.words.length);
}

class ZfsExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function flags(args: string[], allowed: string): { set: Set<string>; rest: string[] } {
  const set = new Set<string>();
  const rest: string[] = [];
  for (const a of args) {
    if (/^-[A-Za-z]+$/.test(a)) {
      for (const f of a.slice(1)) {
        if (!allowed.includes(f)) throw new ZfsExit(2, `invalid option '${f}'`);
        set.add(f);
      }
    } else rest.push(a);
  }
  return { set, rest };
}

async function zfs(ctx: SimContext, argv: string[]): Promise<void> {
  const [sub, ...args] = argv;
  const engine = ctx.engine;
  const snapshots = () => engine.listSnapshots();
  const datasets = async () => (await engine.listDatasets()).map((d) => d.name);
  switch (sub) {
    case 'snapshot': {
      const { set, rest } = flags(args, 'r');
      for (const name of rest) {
        const [ds, snap] = name.split('@');
        if (!snap)
          throw new ZfsExit(1, `cannot create snapshot '${name}': missing '@' delimiter in snapshot name`);
        const all = await datasets();
        if (!all.includes(ds)) throw new ZfsExit(1, `cannot open '${ds}': dataset does not exist`);
        const targets = set.has('r') ? all.filter((d) => d === ds || d.startsWith(`${ds}/`)) : [ds];
        const existing = new Set((await snapshots()).map((s) => s.id));
        for (const t of targets)
          if (existing.has(`${t}@${snap}`))
            throw new ZfsExit(1, `cannot create snapshot '${t}@${snap}': dataset already exists`);
        for (const t of targets) await engine.createSnapshot(t, snap);
      }
      return;
    }
    case 'rollback': {
      const { set, rest } = flags(args, 'rRf');
      const id = rest[0];
      if (!id || rest.length > 1) throw new ZfsExit(2, 'usage: rollback [-rRf] <snapshot>');
      const all = await snapshots();
      const target = all.find((s) => s.id === id);
      if (!target) throw new ZfsExit(1, `cannot open '${id}': dataset does not exist`);
      const newer = all.filter((s) => s.dataset === target.dataset && s.createtxg > target.createtxg);
      if (newer.length && !set.has('r') && !set.has('R'))
        throw new ZfsExit(
          1,
          `cannot rollback to '${id}': more recent snapshots or bookmarks exist\nuse '-r' to force deletion of the following snapshots and bookmarks:\n${newer.map((s) => s.id).join('\n')}`,
        );
      const clones = newer.flatMap((s) => s.clones);
      if (clones.length && !set.has('R'))
        throw new ZfsExit(
          1,
          `cannot rollback to '${id}': clones of previous snapshots exist\nuse '-R' to force deletion of the following clones and dependents:\n${clones.join('\n')}`,
        );
      for (const clone of clones)
        await destroyDatasetTree(ctx, clone, { recursive: true, recursiveClones: true });
      for (const s of [...newer].reverse()) {
        if ((ctx.holds.get(s.id)?.size ?? 0) > 0)
          throw new ZfsExit(1, `cannot destroy snapshot ${s.id}: dataset is busy`);
        await engine.destroySnapshot(s.id);
        ctx.deferred.delete(s.id);
      }
      await engine.rollbackSnapshot(id);
      await reapDeferred(ctx);
      return;
    }
    case 'clone': {
      const { rest } = flags(args, 'p');
      const [snap, target] = rest;
      if (!snap || !target || rest.length > 2)
        throw new ZfsExit(2, 'usage: clone [-p] <snapshot> <filesystem|volume>');
      if (!(await snapshots()).some((s) => s.id === snap))
        throw new ZfsExit(1, `cannot open '${snap}': dataset does not exist`);
      if ((await datasets()).includes(target))
        throw new ZfsExit(1, `cannot create '${target}': dataset already exists`);
      await engine.cloneSnapshot(snap, target);
      return;
    }
    case 'destroy': {
      const { set, rest } = flags(args, 'rRdfnpv');
      const name = rest[0];
      if (!name || rest.length > 1) throw new ZfsExit(2, 'usage: destroy [-fnpRrv] <filesystem|volume>');
      if (!name.includes('@')) {
        await destroyDatasetTree(ctx, name, {
          recursive: set.has('r') || set.has('R'),
          recursiveClones: set.has('R'),
        });
        return;
      }
      const [ds, spec] = name.split('@');
      if (!(await datasets()).includes(ds))
        throw new ZfsExit(1, `could not find any snapshots to destroy; check snapshot names.`);
      const all = (await snapshots()).filter((s) => s.dataset === ds);
      // "%" is a range: "a%b" from a to b, "%" every snapshot of the dataset.
      let picked = all.filter((s) => s.name === spec);
      if (spec.includes('%')) {
        const [from, to] = spec.split('%');
        const start = from ? all.findIndex((s) => s.name === from) : 0;
        const end = to ? all.findIndex((s) => s.name === to) : all.length - 1;
        picked = start < 0 || end < 0 ? [] : all.slice(start, end + 1);
      }
      if (!picked.length)
        throw new ZfsExit(1, 'could not find any snapshots to destroy; check snapshot names.');
      for (const s of picked) {
        if (s.clones.length && !set.has('d') && !set.has('R'))
          throw new ZfsExit(
            1,
            `cannot destroy '${s.id}': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\n${s.clones.join('\n')}`,
          );
        if ((ctx.holds.get(s.id)?.size ?? 0) > 0 && !set.has('d'))
          throw new ZfsExit(1, `cannot destroy snapshot ${s.id}: dataset is busy`);
      }
      for (const s of picked) {
        if (set.has('R'))
          for (const c of s.clones)
            await destroyDatasetTree(ctx, c, { recursive: true, recursiveClones: true });
        if (!set.has('R') && (s.clones.length || (ctx.holds.get(s.id)?.size ?? 0) > 0)) {
          ctx.deferred.add(s.id);
          continue;
        }
        await engine.destroySnapshot(s.id);
      }
      await reapDeferred(ctx);
      return;
    }
    default:
      throw new ZfsExit(2, `unrecognized command '${sub ?? ''}'`);
  }
}

/** Runs the command line; returns the exit status and what it wrote to stderr (the job's log on a NAS). */
async function runShell(ctx: SimContext, command: string): Promise<{ code: number; stderr: string }> {
  let parts;
  try {
    parts = tokenize(command);
  } catch (error) {
    return { code: 2, stderr: `sh: 1: ${(error as Error).message}\n` };
  }
  let code = 0;
  let stderr = '';
  for (let i = 0; i < parts.length; i++) {
    const { words } = parts[i];
    if (i > 0 && parts[i - 1].sep === '&&' && code !== 0) break;
    const cmd = words[0] === '/usr/sbin/zfs' || words[0] === '/sbin/zfs' ? 'zfs' : words[0];
    if (cmd !== 'zfs') {
      code = 127;
      stderr += `sh: 1: ${words[0]}: not found (the simulator's NAS runs zfs commands only)\n`;
      continue;
    }
    try {
      await ctx.exclusive(() => zfs(ctx, words.slice(1)));
      code = 0;
    } catch (error) {
      if (error instanceof ZfsExit) {
        code = error.code;
        stderr += `${error.message}\n`;
      } else if (error instanceof CallError) {
        code = 1;
        stderr += `${error.errmsg}\n`;
      } else if (error instanceof EngineError) {
        code = 1;
        stderr += `${error.message}\n`;
      } else throw error;
    }
  }
  return { code, stderr };
}

// ------------------------------------------------------------------ registration

export function registerCronjob(registry: Registry): void {
  const jobs = new Map<number, CronJob>();
  let nextId = 1;
  const must = (id: SimValue | undefined): CronJob => {
    if (typeof id !== 'number' || !Number.isInteger(id))
      throw new ValidationErrors([['id', 'Input should be a valid integer', ERRNO.EINVAL]]);
    const job = jobs.get(id);
    if (!job) throw instanceNotFound(`CronJob ${id} does not exist`);
    return job;
  };

  registry.add({
    name: 'cronjob.query',
    handler: async (_env, args) => {
      checkArgCount(args, 2);
      return query([...jobs.values()].map(entry), args[0], args[1]);
    },
  });
  registry.add({
    name: 'cronjob.get_instance',
    handler: async (_env, args) => {
      checkArgCount(args, 2);
      return entry(must(args[0]));
    },
  });
  registry.add({
    name: 'cronjob.create',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const data = parseBody(args[0], false);
      const errors: ValidationItem[] = [];
      validate(env.ctx, 'cron_job_create', data, errors);
      if (errors.length) throw new ValidationErrors(errors);
      const job: CronJob = {
        id: nextId++,
        enabled: data.enabled as boolean,
        stderr: data.stderr as boolean,
        stdout: data.stdout as boolean,
        schedule: data.schedule as SimObject,
        command: data.command as string,
        description: data.description as string,
        user: data.user as string,
      };
      jobs.set(job.id, job);
      return entry(job);
    },
  });
  registry.add({
    name: 'cronjob.update',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const job = must(args[0]);
      const data = parseBody(args[1], true);
      const next = { ...entry(job), ...data };
      const errors: ValidationItem[] = [];
      validate(env.ctx, 'cron_job_update', next, errors);
      if (errors.length) throw new ValidationErrors(errors);
      Object.assign(job, next);
      return entry(job);
    },
  });
  registry.add({
    name: 'cronjob.delete',
    handler: async (_env, args) => {
      checkArgCount(args, 1);
      jobs.delete(must(args[0]).id);
      return true;
    },
  });
  registry.add({
    name: 'cronjob.run',
    job: { lock: (args) => `cron_job_run_${String(args[0])}` },
    handler: async (env: CallEnv, args) => {
      checkArgCount(args, 2);
      const job = must(args[0]);
      if (args.length > 1 && typeof args[1] !== 'boolean')
        throw new ValidationErrors([['skip_disabled', 'Input should be a valid boolean', ERRNO.EINVAL]]);
      if (args[1] === true && !job.enabled) throw new CallError('Cron job is disabled', ERRNO.EINVAL);
      // execute.py: the command with PATH set, stdout/stderr hidden as the job says, run as its user.
      const cronCmd = [
        job.command.replace(/\n/g, ''),
        job.stdout ? '> /dev/null' : '',
        job.stderr ? '2> /dev/null' : '',
      ]
        .filter(Boolean)
        .join(' ');
      env.job!.progress(10, 'Executing Cron Task');
      const { code } = await runShell(env.ctx, job.command);
      env.job!.progress(85, 'Executed Cron Task');
      if (code) throw new CallError(`CronTask "${cronCmd}" exited with ${code} (non-zero) exit status.`);
      env.job!.progress(100, 'Execution of Cron Task complete.');
      return null;
    },
  });
}
