// Demo state: three sandboxes with checkpoints that look lived-in. Goes through the SimEngine interface only,
// so it works for every engine (an engine may ignore the backdated snapshot times).
import { instanceDataset, rootfsPrefix, type SimEngine } from './engine.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const GIB = 1024 * 1024 * 1024;

function label(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `px-${date.getUTCFullYear()}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}-${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}`;
}

async function write(engine: SimEngine, name: string, path: string, text: string): Promise<void> {
  await engine.writeFile(dataset(engine, name), `${rootfsPrefix(engine.layout)}${path}`, Buffer.from(text), {
    append: false,
    mode: 0o644,
    uid: 0,
    gid: 0,
  });
}

/** The instance's root dataset in the engine's layout (25.x .ix-virt, 26 .truenas_containers). */
function dataset(engine: SimEngine, name: string): string {
  return instanceDataset(engine.layout, engine.pool, name);
}

export async function seed(engine: SimEngine, now = new Date()): Promise<void> {
  const base = {
    environment: {},
    autostart: true,
    privilegedMode: false,
    storagePool: engine.pool,
    devices: [],
  };
  await engine.createInstance({ ...base, name: 'px-web', image: 'ubuntu/24.04', cpu: '2', memory: 4 * GIB });
  await engine.createInstance({ ...base, name: 'px-agent', image: 'debian/12', cpu: '4', memory: 8 * GIB });
  await engine.createInstance({
    ...base,
    name: 'px-old',
    image: 'ubuntu/22.04',
    cpu: '1',
    memory: 2 * GIB,
    autostart: false,
  });

  const web = dataset(engine, 'px-web');
  await write(engine, 'px-web', 'home/pixel/app/package.json', '{"name":"web","version":"0.1.0"}\n');
  // Logs change between checkpoints, so every checkpoint holds a few unique blocks (a non-zero `used`).
  await write(engine, 'px-web', 'var/log/syslog', 'systemd[1]: Started Session 1.\n'.repeat(9000));
  const webFirst = new Date(now.getTime() - 3 * DAY - 5 * HOUR);
  await engine.createSnapshot(web, label(webFirst), { creation: webFirst });
  await write(engine, 'px-web', 'home/pixel/app/index.js', 'console.log("hello");\n'.repeat(4000));
  await write(engine, 'px-web', 'var/log/syslog', 'sshd[812]: Accepted publickey for pixel\n'.repeat(21000));
  const webSecond = new Date(now.getTime() - 5 * HOUR - 17 * 60_000);
  await engine.createSnapshot(web, label(webSecond), { creation: webSecond });
  await write(engine, 'px-web', 'home/pixel/app/README.md', '# web\n');
  await write(engine, 'px-web', 'var/log/syslog', 'node[1200]: listening on :3000\n'.repeat(3000));

  const agent = dataset(engine, 'px-agent');
  await write(engine, 'px-agent', 'home/pixel/.claude/settings.json', '{"model":"default"}\n');
  await write(engine, 'px-agent', 'var/log/syslog', 'claude[77]: session started\n'.repeat(12000));
  const agentFirst = new Date(now.getTime() - 26 * HOUR);
  await engine.createSnapshot(agent, 'ready', { creation: agentFirst });

  await write(engine, 'px-agent', 'var/log/syslog', 'claude[77]: task finished\n'.repeat(800));
  await engine.startInstance('px-web');
  await engine.startInstance('px-agent');
}

export interface ScaleSeed {
  /** `px-` sandboxes to create (named px-s0000, px-s0001, …) */
  sandboxes: number;
  /** checkpoints per sandbox (ZFS snapshots of its dataset) */
  checkpoints: number;
  /** instances without the `px-` prefix (other workloads on the box), which the extension must never show */
  others: number;
}

/** A big, quiet server for the list benchmarks: every instance stopped, checkpoints an hour apart. */
export async function seedScale(engine: SimEngine, scale: ScaleSeed, now = new Date()): Promise<void> {
  const base = {
    environment: {},
    autostart: false,
    privilegedMode: false,
    storagePool: engine.pool,
    devices: [],
    image: 'ubuntu/24.04',
    cpu: '2',
    memory: 2 * GIB,
  };
  for (let i = 0; i < scale.sandboxes; i++) {
    const name = `px-s${String(i).padStart(4, '0')}`;
    await engine.createInstance({ ...base, name });
    for (let c = 0; c < scale.checkpoints; c++) {
      const creation = new Date(now.getTime() - (scale.checkpoints - c) * HOUR);
      await engine.createSnapshot(dataset(engine, name), `cp${c}`, { creation });
    }
  }
  for (let i = 0; i < scale.others; i++) {
    const name = `other${String(i).padStart(4, '0')}`;
    await engine.createInstance({ ...base, name });
    await engine.createSnapshot(dataset(engine, name), 'nightly', { creation: now });
  }
}
