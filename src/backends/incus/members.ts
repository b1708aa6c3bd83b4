// Cluster members as the sandboxes see them: which member is away (offline, evacuated) and why, in words a user
// reads in the tree and in a command's error. One GET /1.0/cluster/members?recursion=1 answers for all of them.
import type { IncusClusterMember } from './types';

/** Why a sandbox on this member cannot be reached now, or undefined when the member is online. */
export function memberAwayReason(member: IncusClusterMember | undefined, name: string): string | undefined {
  if (!member) return `cluster member ${name} is no longer in the cluster`;
  const status = member.status ?? 'Unknown';
  if (status === 'Online') return undefined;
  const why =
    member.message && member.message !== 'Fully operational' ? `: ${shortReason(member.message)}` : '';
  if (status === 'Evacuated') return `cluster member ${name} is evacuated${why}`;
  return `cluster member ${name} is ${status.toLowerCase()}${why}`;
}

/** "No heartbeat for 14.842323796s (2026-12-03 …)" -> "no heartbeat for 15 s". */
function shortReason(message: string): string {
  const beat = /^No heartbeat for ([\d.]+)s/.exec(message);
  if (beat) return `no heartbeat for ${Math.round(Number(beat[1]))} s`;
  return message.split('\n')[0];
}

/** The member names and the groups they belong to (for choosing a placement), in the server's order. */
export function placementChoices(members: IncusClusterMember[]): { members: string[]; groups: string[] } {
  const groups = new Set<string>();
  for (const m of members) for (const g of m.groups ?? []) groups.add(g);
  return { members: members.map((m) => m.server_name), groups: [...groups].sort() };
}
