// "Create Sandbox…" as one multi-step quick input (name, image, cpu, memory, egress, provision) with a Back
// button and validation messages as you type. Combinations the server cannot do are ruled out in the step
// itself. Tests skip it by passing every answer to the command.
import * as vscode from 'vscode';
import { CancelledError } from '../core/errors';
import type { NetworkPlan } from '../core/network-plan';
import type { EgressMode } from '../core/sandbox';
import { egressChoices } from '../core/egressChoices';
import {
  cpuProblem,
  formatMiB,
  memoryLimitProblem,
  nameClashProblem,
  parseMemory,
  sandboxNameProblem,
} from '../core/names';
import { combinationProblem, type CreateAnswers, type ServerAbilities } from '../workflows/create';

const BACK = Symbol('back');
type Step<T> = Promise<T | typeof BACK>;

function inputStep(
  title: string,
  step: number,
  total: number,
  options: {
    value: string;
    prompt: string;
    placeholder?: string;
    validate: (v: string) => string | undefined;
  },
): Step<string> {
  return new Promise((resolve, reject) => {
    const box = vscode.window.createInputBox();
    box.title = title;
    box.step = step;
    box.totalSteps = total;
    box.value = options.value;
    box.prompt = options.prompt;
    box.placeholder = options.placeholder;
    box.ignoreFocusOut = true;
    if (step > 1) box.buttons = [vscode.QuickInputButtons.Back];
    const check = (v: string) => {
      box.validationMessage = v === '' && options.value === '' ? undefined : options.validate(v);
    };
    let settled = false;
    const finish = (fn: () => void) => {
      settled = true;
      fn();
      box.dispose();
    };
    box.onDidChangeValue(check);
    box.onDidTriggerButton(() => finish(() => resolve(BACK)));
    box.onDidAccept(() => {
      const problem = options.validate(box.value);
      if (problem) {
        box.validationMessage = problem;
        return;
      }
      finish(() => resolve(box.value));
    });
    box.onDidHide(() => {
      if (!settled) finish(() => reject(new CancelledError()));
    });
    box.show();
    check(box.value);
  });
}

/** A choice the server cannot do with the answers so far: shown, explained, and refused when picked. */
type Choice<T> = vscode.QuickPickItem & { value: T; unavailable?: string };

function pickStep<T>(
  title: string,
  step: number,
  total: number,
  placeholder: string,
  choices: Choice<T>[],
  active: T,
): Step<T> {
  const items = choices.map((c) =>
    c.unavailable ? { ...c, label: `$(circle-slash) ${c.label}`, detail: c.unavailable } : c,
  );
  return new Promise((resolve, reject) => {
    const pick = vscode.window.createQuickPick<Choice<T>>();
    pick.title = title;
    pick.step = step;
    pick.totalSteps = total;
    pick.placeholder = placeholder;
    pick.items = items;
    pick.ignoreFocusOut = true;
    const current =
      items.find((i) => i.value === active && !i.unavailable) ?? items.find((i) => !i.unavailable);
    if (current) pick.activeItems = [current];
    if (step > 1) pick.buttons = [vscode.QuickInputButtons.Back];
    let settled = false;
    const finish = (fn: () => void) => {
      settled = true;
      fn();
      pick.dispose();
    };
    pick.onDidTriggerButton(() => finish(() => resolve(BACK)));
    pick.onDidAccept(() => {
      const chosen = pick.selectedItems[0] ?? pick.activeItems[0];
      if (chosen?.unavailable) {
        pick.placeholder = chosen.unavailable;
        return;
      }
      if (chosen) finish(() => resolve(chosen.value));
    });
    pick.onDidHide(() => {
      if (!settled) finish(() => reject(new CancelledError()));
    });
    pick.show();
  });
}

/** "Network: …" for the create flow's title, with a warning when this editor cannot reach it directly. */
export function networkLine(plan: NetworkPlan): string {
  const warning =
    plan.reachableFromClient === false
      ? ' — not reachable from this editor directly (see Pixels: Show Logs)'
      : '';
  return `Network: ${plan.summary}${warning}`;
}

/** What the server allows (learnt before the first step so each step can say it), and where it lands. */
export interface CreateContext extends ServerAbilities {
  /** The effective default egress mode (settings, PIXELS_*, the pixels TOML), listed first and marked. */
  defaultEgress: EgressMode;
  /** Where the sandbox will land, shown in every step's title (absent when the server cannot tell in time). */
  network?: NetworkPlan;
}

/**
 * Runs the steps, starting from `initial` (the defaults, or the answers of a create that failed); the name is
 * checked against the server's sandboxes while typing, CPU and memory against its limits.
 */
export async function runCreateFlow(initial: CreateAnswers, ctx: CreateContext): Promise<CreateAnswers> {
  const title = `Create Sandbox on ${ctx.serverLabel}${ctx.network ? ` · ${networkLine(ctx.network)}` : ''}`;
  const total = 6;
  const a: CreateAnswers = { ...initial };
  let step = 1;
  while (step <= total) {
    let result: unknown;
    switch (step) {
      case 1:
        result = await inputStep(title, 1, total, {
          value: a.name,
          prompt: 'Sandbox name; the container will be called px-<name>',
          placeholder: 'e.g. agent-1',
          validate: (v) => {
            const other = ctx.clash(v);
            return sandboxNameProblem(v) ?? (other ? nameClashProblem(v, other, ctx.serverLabel) : undefined);
          },
        });
        if (result !== BACK) a.name = result as string;
        break;
      case 2:
        result = await inputStep(title, 2, total, {
          value: a.image,
          prompt: 'Image (an alias such as ubuntu/24.04 or debian/12)',
          validate: (v) =>
            v.trim() === ''
              ? 'An image is required.'
              : /\s/.test(v.trim())
                ? 'An image name has no spaces.'
                : undefined,
        });
        if (result !== BACK) a.image = (result as string).trim();
        break;
      case 3:
        result = await inputStep(title, 3, total, {
          value: a.cpu,
          prompt: `CPU cores${ctx.limits.cpus ? ` (the server has ${ctx.limits.cpus})` : ''}`,
          validate: (v) => cpuProblem(v.trim(), ctx.limits),
        });
        if (result !== BACK) a.cpu = (result as string).trim();
        break;
      case 4:
        result = await inputStep(title, 4, total, {
          value: formatMiB(a.memoryMiB),
          prompt: `Memory: 2048 (MiB), 512M, 4G or 4 GiB${ctx.limits.memoryMiB ? ` (the server has ${formatMiB(ctx.limits.memoryMiB)})` : ''}`,
          validate: (v) => {
            const parsed = parseMemory(v);
            return 'problem' in parsed ? parsed.problem : memoryLimitProblem(parsed.mib, ctx.limits);
          },
        });
        if (result !== BACK) {
          const parsed = parseMemory(result as string);
          if ('mib' in parsed) a.memoryMiB = parsed.mib;
        }
        break;
      case 5: {
        const restricted = (mode: EgressMode, label: string, description: string): Choice<EgressMode> => ({
          label,
          description,
          value: mode,
          unavailable:
            ctx.restrictNeedsProvision && !ctx.canProvision
              ? `The "${mode}" rules go in over SSH, which needs provisioning, and ${ctx.serverLabel} cannot provision a sandbox.`
              : undefined,
        });
        result = await pickStep<EgressMode>(
          title,
          5,
          total,
          'Network egress',
          egressChoices(ctx.defaultEgress).map((c) =>
            c.value === 'unrestricted' ? c : restricted(c.value, c.label, c.description),
          ),
          a.egress,
        );
        if (result !== BACK) a.egress = result as EgressMode;
        break;
      }
      case 6: {
        const provisionProblem = combinationProblem(a.egress, true, ctx);
        const plainProblem = combinationProblem(a.egress, false, ctx);
        result = await pickStep<boolean>(
          title,
          6,
          total,
          'Provision the sandbox?',
          [
            {
              label: 'Provision',
              description: 'User pixel, SSH with a pinned host key, dev tools through mise, egress policy',
              detail:
                'Node LTS, Claude Code, Codex, OpenCode, ripgrep and fd by default (settings: pixels.provision.*)',
              value: true,
              unavailable: provisionProblem,
            },
            {
              label: 'No provisioning',
              description: 'A plain container',
              value: false,
              unavailable: plainProblem,
            },
          ],
          a.provision,
        );
        if (result !== BACK) a.provision = result as boolean;
        break;
      }
    }
    step = result === BACK ? Math.max(1, step - 1) : step + 1;
  }
  return a;
}
