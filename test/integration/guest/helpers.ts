// Pieces shared by the guest suites: a provisioned-enough sandbox on the real lab, commands inside it, and the
// probes ("can this sandbox reach that listener?") the egress tests assert on.
import type { IncusBackend } from '../../../src/backends/incus/index';
import { backendExecutor, type Executor } from '../../../src/guest/index';
import { shq } from '../../../src/guest/shell';
import { NET } from './internet';

export { labBackend, removeTestInstances, testPrefix, waitForIpv4 } from '../incus/helpers';

export interface Probe {
  exitCode: number;
  output: string;
}

/** Runs a shell command in the sandbox as root (or as pixel) and returns its exit code and output. */
export async function sh(exec: Executor, command: string, as: 'root' | 'pixel' = 'root'): Promise<Probe> {
  const script = as === 'root' ? command : `runuser -u pixel -- bash -c ${shq(command)}`;
  const r = await exec(script, { timeoutMs: 60_000 });
  return { exitCode: r.exitCode, output: r.output.trim() };
}

/** HTTP GET from inside the sandbox with a short bound; curl exit 7 = refused, 28 = timed out. */
export function fetchFrom(exec: Executor, url: string, family: 4 | 6 = 4): Promise<Probe> {
  return sh(exec, `curl -sS -${family} --max-time 5 -g ${shq(url)}`);
}

/**
 * Asks `server` for the A record of `name` from source port `sourcePort` (netcat, in the lab image), 1 s for the
 * answer; exit code 0 when it answered. The same port twice gives the same conntrack 5-tuple: this shows whether an
 * entry left by an earlier allowed query still lets a query through.
 */
export function dnsQueryFromPort(
  exec: Executor,
  server: string,
  sourcePort: number,
  name: string,
): Promise<Probe> {
  const id = [0x50, 0x58];
  const query = Buffer.concat([
    Buffer.from([...id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])),
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  const bytes = [...query].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  const want = id.map((b) => b.toString(16)).join(' ');
  return sh(
    exec,
    `reply=$(printf '${bytes}' | nc -u -w 1 -p ${sourcePort} ${shq(server)} 53 | od -An -tx1 -N2 | xargs); ` +
      `if [ "$reply" = ${shq(want)} ]; then echo answered; else echo "no answer ($reply)"; exit 1; fi`,
  );
}

/** Waits until the sandbox has booted (systemd finished its start-up jobs, so boot units have run). */
export async function waitBooted(exec: Executor, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await exec('timeout 30 systemctl is-system-running --wait || true', { timeoutMs: 40_000 });
      last = r.output.trim();
      if (/^(running|degraded)$/m.test(last)) return;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`sandbox did not finish booting within ${timeoutMs / 1000} s (last: ${last})`);
}

/** Points the sandbox's DNS at the test resolver. */
export async function useTestResolver(
  backend: IncusBackend,
  name: string,
  resolver: string = NET.dnsV4,
): Promise<void> {
  await backend.writeFile(name, '/etc/resolv.conf', Buffer.from(`nameserver ${resolver}\n`), { mode: 0o644 });
}

/** Creates and starts a sandbox with an IPv4 and an IPv6 address, booted, resolving through the test DNS. */
export async function bootSandbox(backend: IncusBackend, name: string, image: string): Promise<Executor> {
  await backend.create({ name, image, start: true });
  const exec = backendExecutor(backend, name);
  await waitBooted(exec);
  await waitForAddresses(exec);
  await useTestResolver(backend, name);
  return exec;
}

export async function waitForAddresses(exec: Executor, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await sh(
      exec,
      'ip -4 -o addr show dev eth0 scope global; ip -6 -o addr show dev eth0 scope global; ip -6 route show default',
    );
    if (/inet /.test(r.output) && /inet6 /.test(r.output) && /default via/.test(r.output)) return;
    if (Date.now() > deadline) throw new Error(`sandbox has no IPv4/IPv6 address and route: ${r.output}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}
