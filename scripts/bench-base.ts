// Benchmark: a sandbox from a base vs a plain create, on the Incus lab. The base's setup script sleeps about a
// minute (standing in for the downloads the lab cannot make); both sides get the same provisioning and the same
// script. The base is built once (create + provisioning + script + stop + checkpoint); then a plain create runs
// the whole thing (create + provisioning + script, until SSH answers) and each create-from-base clones the base's
// checkpoint (own identity, egress re-checked, until SSH answers).
// Last line: `base-vs-create ratio: <median from-base / plain create>` (target ≤ 0.2).
//   npm run bench:base     (needs the lab: sudo bash test/lab/up.sh)
//   BENCH_SETUP_SECONDS=60 BENCH_RUNS=3 (create-from-base runs; the plain create runs once, BENCH_PLAIN_RUNS)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseService, parseBases, runSetupScript } from '../src/bases/index';
import { labBackend, removeTestInstances, testPrefix } from '../test/integration/incus/helpers';
import { headlessBaseWorkflows } from '../test/integration/bases/headless';

const SETUP_SECONDS = Number(process.env.BENCH_SETUP_SECONDS ?? 60);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PLAIN_RUNS = Number(process.env.BENCH_PLAIN_RUNS ?? 1);
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const { lab, backend } = await labBackend();
  const prefix = testPrefix();
  const dir = mkdtempSync(join(tmpdir(), 'px-bench-base-'));
  const headless = headlessBaseWorkflows(backend, lab.socket);
  const { workflows } = headless;
  const script = [
    '#!/bin/bash',
    'set -eu',
    'echo "fetching the toolchain (simulated)"',
    `sleep ${SETUP_SECONDS}`,
    'mkdir -p /opt/toolchain && echo ready > /opt/toolchain/READY',
    'echo "toolchain ready"',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'setup.sh'), script);
  const { config, problems } = parseBases({
    mcp: {
      base_prefix: `${prefix}-b-`,
      bases: { bench: { parent_image: lab.image, setup_script: join(dir, 'setup.sh') } },
    },
    env: {},
    file: 'bench',
  });
  if (problems.length) throw new Error(problems.map((p) => p.message).join('\n'));
  const bases = new BaseService({ workflows, config: () => config });
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  try {
    console.log(`lab image ${lab.image}, pool ${lab.poolBtrfs}, setup script sleeps ${SETUP_SECONDS} s`);
    let t = performance.now();
    await bases.build('lab', 'bench');
    console.log(
      `base built once in ${s(performance.now() - t)} (create + provisioning + setup + checkpoint)`,
    );

    const plain: number[] = [];
    for (let i = 0; i < PLAIN_RUNS; i++) {
      const name = `${prefix}-p${i}`;
      t = performance.now();
      await workflows.create('lab', { name, image: lab.image }, {});
      const created = performance.now();
      await runSetupScript(await workflows.executor('lab', name), 'bench', script, () => undefined);
      // Ready means SSH answers: the plain create's provisioning ends with its login, as the clone's does.
      await (
        await workflows.executor('lab', name)
      )('true');
      const ms = performance.now() - t;
      plain.push(ms);
      console.log(
        `plain create ${i + 1}: ${s(ms)} (create + provisioning ${s(created - t)}, setup script ${s(performance.now() - created)})`,
      );
      await workflows.destroy('lab', name);
    }

    const fromBase: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const name = `${prefix}-f${i}`;
      t = performance.now();
      await bases.createFromBase('lab', 'bench', { name });
      const ms = performance.now() - t;
      const check = await (await workflows.executor('lab', name))('cat /opt/toolchain/READY');
      if (check.output.trim() !== 'ready')
        throw new Error(`${name} lacks the base's toolchain: ${check.output}`);
      fromBase.push(ms);
      console.log(`create from base ${i + 1}: ${s(ms)} (SSH answers, toolchain there)`);
      await workflows.destroy('lab', name);
    }
    console.log(
      `plain create: median ${s(median(plain))}; create from base: median ${s(median(fromBase))}, min ${s(Math.min(...fromBase))}`,
    );
    console.log(`base-vs-create ratio: ${(median(fromBase) / median(plain)).toFixed(3)}`);
  } finally {
    headless.dispose();
    backend.dispose();
    await removeTestInstances(lab, prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
