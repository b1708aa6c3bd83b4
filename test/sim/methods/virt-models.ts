// The virt.instance argument models (api/v25_04_2 and api/v25_10_x virt_instance.py) as the simulator checks
// them: field types, literals, the 32 MiB memory floor, environment keys/values, stop args and NIC devices.
import { validateModel, type Model } from '../args.js';
import type { SimContext } from '../context.js';
import type { DeviceSpec } from '../engine.js';
import { isSimObject, type SimObject, type SimValue } from '../ejson.js';
import { ERRNO, ValidationErrors, type ValidationItem } from '../errors.js';

const MIB = 1024 * 1024;
/** what system.mem_info / system.cpu_info report on the simulated box */
export const HOST_MEMORY = 64 * 1024 * MIB;
export const HOST_CORES = 16;
const DEV_TYPES = ['DISK', 'NIC', 'PROXY', 'USB', 'TPM', 'GPU', 'PCI'];

function memoryCheck(value: SimValue): string | null {
  return typeof value === 'number' && value < 32 * MIB ? 'Value error, Value must be 32MiB or larger' : null;
}

/** dict[ENV_KEY, ENV_VALUE] (api/v25_04_2/virt_instance.py): pydantic locations and match_validator texts. */
function environmentCheck(value: SimValue): [string, string] | null {
  if (!isSimObject(value)) return null;
  for (const [key, item] of Object.entries(value)) {
    if (!/^\w[\w/]*$/.test(key)) {
      return [
        `.${key}.[key]`,
        'Value error, ENV_KEY must not be empty, should start with alphanumeric characters, should not contain whitespaces, and can have _ and /',
      ];
    }
    if (typeof item !== 'string') return [`.${key}`, 'Input should be a valid string'];
    if (!/^(?!\s*$).+/.test(item)) {
      return [
        `.${key}`,
        'Value error, ENV_VALUE must have at least one non-whitespace character to be considered valid',
      ];
    }
  }
  return null;
}

export function createModel(ctx: SimContext): Model {
  const model: Model = {
    name: { type: 'str', required: true, minLength: 1, maxLength: 200 },
    source_type: { type: 'str', literals: ['IMAGE'], default: 'IMAGE' },
    storage_pool: { type: 'str', nullable: true, default: null },
    image: { type: 'str', required: true, minLength: 1 },
    remote: { type: 'str', literals: ['LINUX_CONTAINERS'], default: 'LINUX_CONTAINERS' },
    instance_type: { type: 'str', literals: ['CONTAINER'], default: 'CONTAINER' },
    environment: { type: 'dict', nullable: true, default: null, check: environmentCheck },
    autostart: { type: 'bool', nullable: true, default: true },
    cpu: { type: 'str', nullable: true, default: null },
    devices: { type: 'list', nullable: true, default: null },
    memory: { type: 'int', nullable: true, default: null, check: memoryCheck },
  };
  if (ctx.version === '25.04') model.iso_volume = { type: 'str', nullable: true, default: null };
  else {
    model.root_disk_size = { type: 'int', ge: 5, default: 10 };
    model.root_disk_io_bus = {
      type: 'str',
      literals: ['NVME', 'VIRTIO-BLK', 'VIRTIO-SCSI'],
      default: 'NVME',
    };
    model.privileged_mode = { type: 'bool', default: false };
  }
  return model;
}

export function updateModel(ctx: SimContext): Model {
  const model: Model = {
    environment: { type: 'dict', nullable: true, check: environmentCheck },
    autostart: { type: 'bool', nullable: true },
    cpu: { type: 'str', nullable: true },
    memory: { type: 'int', nullable: true, check: memoryCheck },
    vnc_port: { type: 'int', nullable: true },
    enable_vnc: { type: 'bool' },
    vnc_password: { type: 'str', nullable: true },
    secure_boot: { type: 'bool', nullable: true },
    root_disk_size: { type: 'int', nullable: true, ge: 5 },
    root_disk_io_bus: { type: 'str', nullable: true, literals: ['NVME', 'VIRTIO-BLK', 'VIRTIO-SCSI'] },
  };
  if (ctx.version !== '25.04') {
    model.image_os = { type: 'str', nullable: true };
    model.privileged_mode = { type: 'bool' };
  }
  return model;
}

const STOP_MODEL: Model = { timeout: { type: 'int', default: -1 }, force: { type: 'bool', default: false } };

/** The stop/restart args model, including its model validator (attribute ""). */
export function parseStopArgs(value: SimValue | undefined): { timeout: number; force: boolean } {
  const errors: ValidationItem[] = [];
  const parsed = validateModel(value ?? {}, 'stop_args', STOP_MODEL, errors);
  if (errors.length) throw new ValidationErrors(errors);
  const timeout = parsed.timeout as number;
  const force = parsed.force as boolean;
  if (!force && timeout === -1) {
    throw new ValidationErrors([
      ['', 'Value error, Timeout should be set if force is disabled', ERRNO.EINVAL],
    ]);
  }
  return { timeout, force };
}

const NIC_MODEL: Model = {
  dev_type: { type: 'str', required: true },
  name: { type: 'str', nullable: true, default: null },
  description: { type: 'str', nullable: true, default: null },
  readonly: { type: 'bool', default: false },
  network: { type: 'str', nullable: true, default: null },
  nic_type: { type: 'str', nullable: true, literals: ['BRIDGED', 'MACVLAN'], default: null },
  parent: { type: 'str', nullable: true, default: null },
};

export function parseDevices(
  ctx: SimContext,
  value: SimValue,
  prefix: string,
  errors: ValidationItem[],
): DeviceSpec[] {
  if (!Array.isArray(value)) return [];
  const devices: DeviceSpec[] = [];
  const counters = new Map<string, number>();
  value.forEach((raw, index) => {
    const at = `${prefix}.devices.${index}`;
    if (!isSimObject(raw)) {
      errors.push([at, 'Input should be a valid dictionary', ERRNO.EINVAL]);
      return;
    }
    const devType = raw.dev_type;
    if (devType === undefined) {
      errors.push([`${at}.dev_type`, 'Field required', ERRNO.EINVAL]);
      return;
    }
    if (typeof devType !== 'string' || !DEV_TYPES.includes(devType)) {
      errors.push([
        at,
        `Input tag '${String(devType)}' found using 'dev_type' does not match any of the expected tags: ${DEV_TYPES.map((t) => `'${t}'`).join(', ')}`,
        ERRNO.EINVAL,
      ]);
      return;
    }
    if (devType !== 'NIC') {
      // Other device types are accepted as given (the sandboxes only use NICs).
      devices.push(flatDevice(raw));
      return;
    }
    const model: Model = { ...NIC_MODEL };
    if (ctx.version !== '25.04') model.mac = { type: 'str', nullable: true, default: null };
    const nic = validateModel(raw, `${at}.NIC`, model, errors);
    if (nic.nic_type === 'MACVLAN' && !nic.parent)
      errors.push([`${at}.NIC.parent`, 'Value error, Parent is required for MACVLAN', ERRNO.EINVAL]);
    const n = counters.get('eth') ?? 0;
    counters.set('eth', n + 1);
    devices.push(flatDevice({ ...nic, name: nic.name ?? `eth${n}` }));
  });
  return devices;
}

function flatDevice(obj: SimObject): DeviceSpec {
  const out: DeviceSpec = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

export function instanceLock(args: SimValue[]): string {
  if (args.length === 0) throw new Error('IndexError: list index out of range');
  return `instance_action_${String(args[0])}`;
}
