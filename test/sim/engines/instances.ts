// What both engines keep about an instance besides its status, and the Incus rules and wording around it.
import {
  EngineError,
  type Address,
  type CreateInstanceSpec,
  type ImageInfo,
  type InstancePatch,
  type InstanceRecord,
  type InstanceStatus,
} from '../engine.js';

/** The record without what the engine reads from the running container (status, addresses). */
export type InstanceBase = Omit<InstanceRecord, 'status' | 'addresses' | 'pid'>;

/** Incus instance names: a hostname label (1-63, letters/digits/hyphen, no leading digit/hyphen, no trailing hyphen). */
function checkInstanceName(name: string): void {
  let reason: string | null = null;
  if (name.length < 1 || name.length > 63) reason = 'Name must be 1-63 characters long';
  else if (/^[0-9]/.test(name)) reason = 'Name must not start with a digit';
  else if (name.startsWith('-')) reason = 'Name must not start with a hyphen';
  else if (name.endsWith('-')) reason = 'Name must not end with a hyphen';
  else if (!/^[a-zA-Z0-9-]+$/.test(name)) reason = 'Name can only contain alphanumeric and hyphen characters';
  if (reason) throw new EngineError('EINVAL', `Invalid instance name: ${reason}`);
}

/** The first checks of createInstance: a valid name that is not taken. */
export function checkNewInstance(instances: Map<string, InstanceBase>, name: string): void {
  checkInstanceName(name);
  if (instances.has(name)) throw new EngineError('EEXIST', 'Instance is already exists');
}

/** Incus' wording for the refusals both engines make. */
export const incusErrors = {
  alreadyRunning: () => new EngineError('EBUSY', 'The instance is already running'),
  alreadyStopped: () => new EngineError('EBUSY', 'The instance is already stopped'),
  rootMissing: (dataset: string) =>
    new EngineError('EFAULT', `Failed to mount "${dataset}": dataset does not exist`),
  imageNotFound: (alias: string) =>
    new EngineError('EINVAL', `Failed getting remote image info: Image "${alias}" not found`),
};

export function mustInstance<T extends InstanceBase>(instances: Map<string, T>, name: string): T {
  const state = instances.get(name);
  if (!state) throw new EngineError('ENOENT', 'Instance not found');
  return state;
}

export function newInstance(spec: CreateInstanceSpec, image: ImageInfo, createdAt: Date): InstanceBase {
  return {
    name: spec.name,
    cpu: spec.cpu,
    memory: spec.memory,
    autostart: spec.autostart,
    environment: { ...spec.environment },
    image,
    privilegedMode: spec.privilegedMode,
    storagePool: spec.storagePool,
    devices: spec.devices.map((d) => ({ ...d })),
    createdAt,
  };
}

export function applyPatch(state: InstanceBase, patch: InstancePatch): void {
  if (patch.cpu !== undefined) state.cpu = patch.cpu;
  if (patch.memory !== undefined) state.memory = patch.memory;
  if (patch.environment !== undefined) state.environment = { ...patch.environment };
  if (patch.autostart !== undefined) state.autostart = patch.autostart;
  if (patch.privilegedMode !== undefined) state.privilegedMode = patch.privilegedMode;
  if (patch.devices !== undefined) state.devices = patch.devices.map((d) => ({ ...d }));
}

/** A copy for the protocol layer; status and addresses are the engine's to say. */
export function instanceRecord(
  state: InstanceBase,
  status: InstanceStatus,
  addresses: Address[],
  pid: number | null,
): InstanceRecord {
  return {
    name: state.name,
    status,
    cpu: state.cpu,
    memory: state.memory,
    autostart: state.autostart,
    environment: { ...state.environment },
    image: { ...state.image },
    privilegedMode: state.privilegedMode,
    storagePool: state.storagePool,
    devices: state.devices.map((d) => ({ ...d })),
    addresses,
    pid,
    createdAt: new Date(state.createdAt),
  };
}
