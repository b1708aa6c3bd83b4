// "Create Sandbox…" as one multi-step quick input (name, image, cpu, memory, egress, provision) with a Back
// button and validation messages as you type. Tests skip it by passing every answer to the command.
import * as vscode from 'vscode';
import { CancelledError } from '../core/errors';
import type { SandboxDefaults } from '../core/config';
import type { NetworkPlan } from '../core/network-plan';
import type { EgressMode } from '../core/sandbox';
import { egressChoices } from '../core/egressChoices';
import { cpuProblem, memoryProblem, sandboxNameProblem } from '../core/names';

export interface CreateAnswers {
  name: string;
  image: string;
  cpu: string;
  memoryMiB: number;
  egress: EgressMode;
  provision: boolean;
}

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

function pickStep<T>(
  title: string,
  step: number,
  total: number,
  placeholder: string,
  items: (vscode.QuickPickItem & { value: T })[],
  active: T,
): Step<T> {
  return new Promise((resolve, reject) => {
    const pick = vscode.window.createQuickPick<vscode.QuickPickItem & { value: T }>();
    pick.title = title;
    pick.step = step;
    pick.totalSteps = total;
    pick.placeholder = placeholder;
    pick.items = items;
    pick.ignoreFocusOut = true;
    const current = items.find((i) => i.value === active);
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

/**
 * Runs the steps; `taken(name)` says whether a sandbox of that name exists already on the chosen server, so the
 * user hears it while typing rather than after a server round trip. `network` (where the sandbox will land) is
 * shown in every step's title.
 */
export async function runCreateFlow(
  defaults: SandboxDefaults,
  taken: (name: string) => boolean,
  serverLabel: string,
  network?: NetworkPlan,
): Promise<CreateAnswers> {
  const title = `Create Sandbox on ${serverLabel}${network ? ` · ${networkLine(network)}` : ''}`;
  const total = 6;
  const a: CreateAnswers = {
    name: '',
    image: defaults.image,
    cpu: defaults.cpu,
    memoryMiB: defaults.memoryMiB,
    egress: defaults.egress,
    provision: defaults.provision,
  };
  let step = 1;
  while (step <= total) {
    let result: unknown;
    switch (step) {
      case 1:
        result = await inputStep(title, 1, total, {
          value: a.name,
          prompt: 'Sandbox name; the container will be called px-<name>',
          placeholder: 'e.g. agent-1',
          validate: (v) =>
            sandboxNameProblem(v) ?? (taken(v) ? `A sandbox named "${v}" exists already.` : undefined),
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
          prompt: 'CPU cores',
          validate: (v) => cpuProblem(v.trim()),
        });
        if (result !== BACK) a.cpu = (result as string).trim();
        break;
      case 4:
        result = await inputStep(title, 4, total, {
          value: String(a.memoryMiB),
          prompt: 'Memory in MiB',
          validate: (v) =>
            /^\d+$/.test(v.trim())
              ? memoryProblem(Number(v))
              : 'Memory must be a whole number of MiB, such as 2048.',
        });
        if (result !== BACK) a.memoryMiB = Number((result as string).trim());
        break;
      case 5:
        result = await pickStep<EgressMode>(
          title,
          5,
          total,
          'Network egress',
          egressChoices(defaults.egress),
          a.egress,
        );
        if (result !== BACK) a.egress = result as EgressMode;
        break;
      case 6:
        result = await pickStep<boolean>(
          title,
          6,
          total,
          'Provision the sandbox?',
          [
            {
              label: 'Provision',
              description: 'User pixel, SSH with a pinned host key, dev tools through mise, egress policy',
              detail: 'Node LTS, Claude Code, Codex and OpenCode by default (settings: pixels.provision.*)',
              value: true,
            },
            { label: 'No provisioning', description: 'A plain container', value: false },
          ],
          a.provision,
        );
        if (result !== BACK) a.provision = result as boolean;
        break;
    }
    step = result === BACK ? Math.max(1, step - 1) : step + 1;
  }
  return a;
}
