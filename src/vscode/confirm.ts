// Modal confirmations for destructive actions. Each takes the test's answer first (modal dialogs are refused
// in the extension-host test mode), so the command never blocks there.
import * as vscode from 'vscode';

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * A modal whose focused (first) button is the safe one: VS Code focuses and highlights the first button and
 * puts its own Cancel last, so Enter on a destructive dialog keeps things as they are. `safe` is that first
 * button ("Keep …"); only `action` goes ahead.
 */
async function ask(
  message: string,
  detail: string,
  action: string,
  answer: boolean | undefined,
  safe?: string,
): Promise<boolean> {
  if (answer !== undefined) return answer;
  const buttons: vscode.MessageItem[] = safe ? [{ title: safe }, { title: action }] : [{ title: action }];
  const choice = await vscode.window.showWarningMessage(message, { modal: true, detail }, ...buttons);
  return choice?.title === action;
}

export function confirmDestroy(name: string, checkpoints: number, answer?: boolean): Promise<boolean> {
  const detail =
    checkpoints > 0
      ? `Its ${plural(checkpoints, 'checkpoint')} will be destroyed with it. This cannot be undone.`
      : 'It has no checkpoints. This cannot be undone.';
  return ask(`Destroy sandbox "${name}"?`, detail, 'Destroy', answer, `Keep "${name}"`);
}

export function confirmRestore(
  name: string,
  label: string,
  newer: string[],
  answer?: boolean,
): Promise<boolean> {
  const lost =
    newer.length === 0
      ? 'No newer checkpoints exist, so none are destroyed.'
      : `${newer.length === 1 ? 'This newer checkpoint' : `These ${newer.length} newer checkpoints`} will be destroyed: ${newer.join(', ')}.`;
  return ask(
    `Restore "${name}" to checkpoint "${label}"?`,
    `Changes made since "${label}" are lost. ${lost}`,
    'Restore',
    answer,
    'Keep Current State',
  );
}

export function confirmDeleteCheckpoint(name: string, label: string, answer?: boolean): Promise<boolean> {
  return ask(
    `Delete checkpoint "${label}" of "${name}"?`,
    'The sandbox itself is not changed. This cannot be undone.',
    'Delete',
    answer,
    'Keep Checkpoint',
  );
}

export function confirmSetupSsh(name: string, running: boolean, answer?: boolean): Promise<boolean> {
  return ask(
    `Set up SSH access to "${name}"?`,
    `Pixels puts a new SSH host key (pinned on this machine) and your public key into the sandbox, then ${running ? 'restarts' : 'starts'} it so sshd serves the new key.`,
    'Set Up',
    answer,
  );
}

export type DependentClonesChoice = 'destroy' | 'clone' | undefined;

/**
 * A restore the server cannot do while sandboxes cloned from a later state exist: destroy them and restore, or
 * clone the checkpoint instead. `answer` is the test's choice ('destroy' | 'clone' | 'cancel').
 */
export async function askDependentClones(
  message: string,
  label: string,
  dependents: string[],
  answer?: unknown,
): Promise<DependentClonesChoice> {
  if (answer === 'destroy' || answer === 'clone') return answer;
  if (answer !== undefined) return undefined;
  const names = dependents.map((d) => `"${d}"`).join(', ');
  const destroy = `Destroy ${names} and Restore`;
  const clone = `Clone "${label}" Instead`;
  // Destroying only helps when every dependent is a sandbox of ours (the server names anything else by dataset).
  const actions = dependents.length ? [destroy, clone] : [clone];
  const choice = await vscode.window.showWarningMessage(
    message,
    {
      modal: true,
      detail: dependents.length
        ? `Destroying ${dependents.length === 1 ? 'it' : 'them'} cannot be undone. Cloning keeps everything and makes a new sandbox from "${label}".`
        : `Cloning keeps everything and makes a new sandbox from "${label}".`,
    },
    ...actions,
  );
  return choice === destroy ? 'destroy' : choice === clone ? 'clone' : undefined;
}

export function confirmRebuildBase(base: string, sandbox: string, answer?: boolean): Promise<boolean> {
  return ask(
    `Rebuild base "${base}"?`,
    `Its sandbox "${sandbox}" and its checkpoint are destroyed and built again. Sandboxes already created from it are not touched.`,
    'Rebuild',
    answer,
    `Keep "${base}"`,
  );
}

export function confirmDeleteBase(base: string, sandbox: string, answer?: boolean): Promise<boolean> {
  return ask(
    `Delete base "${base}"?`,
    `Its sandbox "${sandbox}" and its checkpoint are destroyed; it can be built again. Sandboxes already created from it are not touched.`,
    'Delete',
    answer,
    `Keep "${base}"`,
  );
}

export function confirmStopSession(
  sandbox: string,
  session: string,
  running: boolean,
  answer?: boolean,
): Promise<boolean> {
  return ask(
    `Stop session "${session}" in "${sandbox}"?`,
    running
      ? 'What runs in it is ended (SIGHUP) and its output is gone. Closing its terminal only detaches it.'
      : 'Its last output is gone with it.',
    'Stop Session',
    answer,
    `Keep "${session}"`,
  );
}
