// The SSH host alias of a sandbox (`px-<name>.<server id>`, unique across servers) and the way back: which
// sandbox a Remote-SSH window (authority `ssh-remote+<alias>`) is connected to.
import { INSTANCE_PREFIX } from './sandbox';
import { sandboxNameProblem } from './names';

export function sandboxAlias(serverId: string, name: string): string {
  return `${INSTANCE_PREFIX}${name}.${serverId}`;
}

/**
 * Remote-SSH writes the host after `ssh-remote+` as is, or, when it has characters an authority cannot hold
 * (upper case among them), as the hex of `{"hostName":"<host>"}`.
 */
function remoteHost(authority: string): string | undefined {
  const m = /^ssh-remote\+(.+)$/.exec(authority);
  if (!m) return undefined;
  const host = m[1];
  if (/^(?:[0-9a-f]{2})+$/i.test(host) && host.toLowerCase().startsWith('7b')) {
    try {
      const parsed = JSON.parse(Buffer.from(host, 'hex').toString('utf8')) as { hostName?: unknown };
      if (typeof parsed.hostName === 'string') return parsed.hostName;
    } catch {
      // not the JSON form: a plain host name that happens to be hex
    }
  }
  return host;
}

/**
 * The sandbox a window's remote authority points at, when it is one of our aliases on a configured server; the
 * longest matching server id wins (ids may contain dots). Undefined for every other window.
 */
export function sandboxOfRemoteAuthority(
  authority: string | undefined,
  serverIds: readonly string[],
): { serverId: string; name: string } | undefined {
  const host = authority ? remoteHost(authority) : undefined;
  if (!host?.startsWith(INSTANCE_PREFIX)) return undefined;
  const ids = [...serverIds].sort((a, b) => b.length - a.length);
  for (const serverId of ids) {
    const suffix = `.${serverId}`;
    if (!host.endsWith(suffix)) continue;
    const name = host.slice(INSTANCE_PREFIX.length, -suffix.length);
    if (!sandboxNameProblem(name)) return { serverId, name };
  }
  return undefined;
}
