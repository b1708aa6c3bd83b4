// "Add Server…" for a TrueNAS, in the order that keeps the API key safe and the person in the wizard:
//   (1/4) kind · (2/4) address — parsed as you type, then reachability and the certificate (trust prompt) ·
//   (3/4) user · (4/4) API key — checked by logging in.
// A failed check keeps its step open with the reason (Enter or the Retry button tries again; the Back button or
// editing the value changes it), so nothing typed is lost. Tests pass the answers instead (addTrueNASFromAnswers).
import * as vscode from 'vscode';
import { endpointLabel, type CertificateDescription } from '../core/certificate';
import type { ServerConfig } from '../core/config';
import { CancelledError, SecurityError, userMessage, ValidationError } from '../core/errors';
import { defaultPort, parseServerAddress, type ServerAddress } from '../core/server-address';
import type { EndpointTarget } from '../backends/truenas/index';
import { askTrust, trustAnswerOf } from './certificatePrompt';
import { loadTrueNAS } from '../workflows/lazy';
import type { Answers } from './pick';
import type { Services } from './services';

export type NewServer = Omit<ServerConfig, 'source'>;
export interface AddedServer {
  server: NewServer;
  apiKey?: string;
  /** "TrueNAS 25.10.1", when the wizard already logged in. */
  version?: string;
}

export const DEFAULT_TRUENAS_USER = 'truenas_admin';
export const ADD_SERVER_TITLE = 'Add Server';
export const ADD_SERVER_STEPS = 4;

export const BACK = Symbol('back');
export type StepResult<T> = T | typeof BACK;

const RETRY: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('refresh'), tooltip: 'Retry' };

interface InputStep {
  step: number;
  /** Default ADD_SERVER_STEPS (the TrueNAS path); the Incus path has fewer. */
  totalSteps?: number;
  value: string;
  prompt: string;
  placeholder?: string;
  password?: boolean;
  /** As you type: a sentence saying what is wrong, or undefined. */
  validate: (value: string) => string | undefined;
  /** On Enter with a valid value: long work (busy box); a sentence keeps the step open showing it. */
  accept?: (value: string) => Promise<string | undefined>;
}

/** One step of the wizard as an input box with the step counter, a Back button and (after a failure) Retry. */
export function inputStep(spec: InputStep): Promise<StepResult<string>> {
  return new Promise((resolve, reject) => {
    const box = vscode.window.createInputBox();
    box.title = ADD_SERVER_TITLE;
    box.step = spec.step;
    box.totalSteps = spec.totalSteps ?? ADD_SERVER_STEPS;
    box.value = spec.value;
    box.prompt = spec.prompt;
    box.placeholder = spec.placeholder;
    box.password = spec.password ?? false;
    box.ignoreFocusOut = true;
    const backButton = spec.step > 1 ? [vscode.QuickInputButtons.Back] : [];
    box.buttons = backButton;
    let settled = false;
    let running = false;
    const finish = (fn: () => void) => {
      settled = true;
      fn();
      box.dispose();
    };
    const check = (v: string) => {
      box.validationMessage = v === '' ? undefined : spec.validate(v);
    };
    const submit = async () => {
      if (running) return;
      const problem = spec.validate(box.value);
      if (problem) {
        box.validationMessage = problem;
        return;
      }
      if (!spec.accept) return finish(() => resolve(box.value.trim()));
      running = true;
      box.busy = true;
      box.enabled = false;
      box.validationMessage = undefined;
      const failure = await spec.accept(box.value.trim()).catch((err: unknown) => userMessage(err));
      running = false;
      if (settled) return;
      box.busy = false;
      box.enabled = true;
      if (failure === undefined) return finish(() => resolve(box.value.trim()));
      box.validationMessage = failure;
      box.buttons = [...backButton, RETRY];
    };
    box.onDidChangeValue((v) => {
      if (!running) check(v);
    });
    box.onDidTriggerButton((b) => {
      if (b === RETRY) void submit();
      else if (!running) finish(() => resolve(BACK));
    });
    box.onDidAccept(() => void submit());
    box.onDidHide(() => {
      if (!settled) finish(() => reject(new CancelledError()));
    });
    box.show();
    check(box.value);
  });
}

function hostPort(a: ServerAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${host}:${a.port ?? defaultPort(a.secure)}`;
}

/**
 * Reachability, then trust: an untrusted certificate is shown (or judged by the test's answer) and pinned only on
 * "Trust"; the endpoint is checked again with the pin. Returns the target to use, with its pin.
 */
async function reachAndTrust(
  services: Services,
  address: ServerAddress,
  trust: boolean | string | undefined,
): Promise<EndpointTarget> {
  const { checkTrueNASEndpoint } = await loadTrueNAS();
  const target: EndpointTarget = { ...address };
  let check = await checkTrueNASEndpoint(target, services.log);
  if (check.trusted) return target;
  const cert: CertificateDescription = check.certificate;
  services.log.info(
    `add server: ${hostPort(address)} presents an untrusted certificate (${check.caProblem}), SHA-256 ${cert.fingerprint}`,
  );
  if (!(await askTrust(hostPort(address), cert, check.pinned, trust)))
    throw new SecurityError(
      `You did not trust the certificate of ${hostPort(address)} (SHA-256 ${cert.fingerprint}), so no API key ` +
        'was sent and nothing was saved.',
    );
  target.tlsFingerprint = cert.fingerprint;
  check = await checkTrueNASEndpoint(target, services.log);
  if (!check.trusted)
    throw new SecurityError(
      `${hostPort(address)} presented a different certificate on the next connection (SHA-256 ` +
        `${check.certificate.fingerprint}, trusted ${cert.fingerprint}): not sending an API key to it.`,
    );
  services.log.info(
    `add server: pinned the certificate of ${hostPort(address)} (SHA-256 ${cert.fingerprint})`,
  );
  return target;
}

/** Logs in with the key; a refused key says whether the key or the user is wrong (and names the owner). */
async function login(
  services: Services,
  id: string,
  target: EndpointTarget,
  username: string,
  apiKey: string,
): Promise<string> {
  const { probeTrueNAS } = await loadTrueNAS();
  const info = await probeTrueNAS(
    {
      serverId: id,
      host: target.host,
      port: target.port,
      secure: target.secure,
      username,
      tlsFingerprint: target.tlsFingerprint,
    },
    apiKey,
    services.log,
  );
  return info.version;
}

function apiKeyProblem(v: string): string | undefined {
  const key = v.trim();
  if (key === '') return 'Paste the API key.';
  if (!/^\d+-/.test(key))
    return 'A TrueNAS API key starts with its number and a hyphen (e.g. "3-AbC…"): copy the whole key.';
  if (!/^\d+-[A-Za-z0-9_-]{16,}$/.test(key))
    return 'That is not a whole TrueNAS API key (its number, a hyphen, then 64 letters and digits).';
  return undefined;
}

function userProblem(v: string): string | undefined {
  const user = v.trim();
  if (user === '') return 'A user name is required (the owner of the API key).';
  if (/\s/.test(user)) return 'A user name has no spaces.';
  return undefined;
}

function newServer(id: string, target: EndpointTarget, username: string): NewServer {
  return {
    id,
    kind: 'truenas',
    label: target.host,
    host: target.host,
    port: target.port,
    username,
    secure: target.secure,
    tlsFingerprint: target.tlsFingerprint,
  };
}

/** Steps 2-4 of the palette path; BACK when the person goes back from the address to the kind. */
export async function runTrueNASWizard(
  services: Services,
  uniqueId: (base: string) => string,
): Promise<StepResult<AddedServer>> {
  let addressText = '';
  let target: EndpointTarget | undefined;
  let username = DEFAULT_TRUENAS_USER;
  let apiKey = '';
  let version = '';
  let step = 2;
  while (step <= ADD_SERVER_STEPS) {
    let result: StepResult<string>;
    if (step === 2) {
      result = await inputStep({
        step,
        value: addressText,
        prompt:
          'TrueNAS address: host name or IP (optionally :port), or a URL such as https://nas.lan. ' +
          'Pixels checks the connection and the certificate before it asks for the API key.',
        placeholder: 'truenas.local, 192.168.1.10, https://nas.lan:8443',
        validate: (v) => {
          const parsed = parseServerAddress(v);
          return parsed.ok ? undefined : parsed.problem;
        },
        accept: async (v) => {
          const parsed = parseServerAddress(v);
          if (!parsed.ok) return parsed.problem;
          try {
            target = await reachAndTrust(services, parsed.address, undefined);
            return undefined;
          } catch (err) {
            return `${userMessage(err)} Press Enter (or Retry) to try again, or change the address.`;
          }
        },
      });
      if (result !== BACK) addressText = result;
    } else if (step === 3) {
      result = await inputStep({
        step,
        value: username,
        prompt: `User the API key belongs to (a TrueNAS 25.04+ install's administrator is "${DEFAULT_TRUENAS_USER}")`,
        validate: userProblem,
      });
      if (result !== BACK) username = result;
    } else {
      const t = target!;
      result = await inputStep({
        step,
        value: apiKey,
        password: true,
        prompt:
          `API key of "${username}" (TrueNAS UI: Credentials → Users → API Keys, or your user menu → My API Keys). ` +
          'It goes to the OS keyring, never into settings.',
        validate: apiKeyProblem,
        accept: async (v) => {
          try {
            version = await login(services, uniqueId(t.host), t, username, v);
            return undefined;
          } catch (err) {
            const owner = (err as { keyOwner?: unknown }).keyOwner;
            if (typeof owner === 'string') {
              username = owner;
              return `${userMessage(err)} Go Back (←) to the user step: "${owner}" is filled in.`;
            }
            return `${userMessage(err)} Press Enter (or Retry) to try again, or go Back.`;
          }
        },
      });
      if (result !== BACK) apiKey = result;
    }
    if (result === BACK) {
      if (step === 2) return BACK;
      step--;
    } else step++;
  }
  const t = target!;
  return { server: newServer(uniqueId(t.host), t, username), apiKey, version };
}

function str(a: Answers, key: string): string | undefined {
  return typeof a[key] === 'string' ? (a[key] as string) : undefined;
}

/** The answers path (tests, scripts): same checks in the same order, no prompts except the trust modal. */
export async function addTrueNASFromAnswers(
  services: Services,
  a: Answers,
  uniqueId: (base: string) => string,
): Promise<AddedServer> {
  let address: ServerAddress;
  const text = str(a, 'address');
  if (text !== undefined) {
    const parsed = parseServerAddress(text);
    if (!parsed.ok) throw new ValidationError(parsed.problem);
    address = parsed.address;
  } else {
    const host = str(a, 'host') ?? '';
    const port = typeof a.port === 'number' ? a.port : undefined;
    const secure = typeof a.secure === 'boolean' ? a.secure : true;
    const parsed = parseServerAddress(
      `${secure ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}${port !== undefined ? `:${port}` : ''}`,
    );
    if (!parsed.ok) throw new ValidationError(parsed.problem);
    address = parsed.address;
  }
  const username = str(a, 'username') ?? DEFAULT_TRUENAS_USER;
  const apiKey = str(a, 'apiKey');
  if (!apiKey) throw new ValidationError('An API key is required for a TrueNAS server.');
  const problem = apiKeyProblem(apiKey);
  if (problem) throw new ValidationError(problem);
  const where = endpointLabel(address.host, address.port ?? defaultPort(address.secure), address.secure);
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Connecting to ${where}…` },
    async () => {
      const pinned = str(a, 'tlsFingerprint');
      const target = pinned
        ? { ...address, tlsFingerprint: pinned }
        : await reachAndTrust(services, address, trustAnswerOf(a.trust));
      const id = str(a, 'id') ?? uniqueId(str(a, 'label') ?? address.host);
      const version = await login(services, id, target, username, apiKey);
      const server = { ...newServer(id, target, username), label: str(a, 'label') ?? address.host };
      return { server, apiKey, version };
    },
  );
}
