// Text for tree rows. vscode-free so it is unit-tested directly. Ages use coarse buckets so a row's text changes
// at most once a minute (then hourly, daily), never every second.

import { formatMiB } from '../core/names';

export function formatAge(date: Date, now: Date = new Date()): string {
  const seconds = Math.max(0, (now.getTime() - date.getTime()) / 1000);
  const minutes = Math.floor(seconds / 60);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 30) return `${days} d ago`;
  const months = Math.floor(days / 30);
  if (months < 12) return `${months} mo ago`;
  return `${Math.floor(days / 365)} y ago`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** One rule for memory text in the tree and in the create flow's messages. */
export { formatMiB as formatMemory };

export function formatDate(date: Date): string {
  return date
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

/** The status bar text of a sandbox window: name, egress mode, newest checkpoint's age. */
export function sandboxWindowText(
  name: string,
  egress: string | undefined,
  newestCheckpoint: Date | undefined,
  now: Date = new Date(),
): string {
  const checkpoint = newestCheckpoint ? `checkpoint ${formatAge(newestCheckpoint, now)}` : 'no checkpoint';
  return `$(vm) ${name} · ${egress ? `egress ${egress}` : 'egress unknown'} · ${checkpoint}`;
}

/** The share of one core used between two cumulative CPU-time samples, in percent (100 = one full core). */
export function cpuPercent(
  before: { cpuSeconds?: number; sampledAt: number } | undefined,
  after: { cpuSeconds?: number; sampledAt: number },
): number | undefined {
  if (before?.cpuSeconds === undefined || after.cpuSeconds === undefined) return undefined;
  const wall = (after.sampledAt - before.sampledAt) / 1000;
  if (wall <= 0 || after.cpuSeconds < before.cpuSeconds) return undefined;
  return ((after.cpuSeconds - before.cpuSeconds) / wall) * 100;
}

export interface UsageText {
  cpu?: string;
  memory?: string;
  disk?: string;
  processes?: string;
}

/** Usage as the tooltip and the details view show it; a missing value stays missing (no zeros made up). */
export function usageText(
  usage: { cpuSeconds?: number; memoryBytes?: number; diskBytes?: number; processes?: number },
  percent: number | undefined,
  memoryLimitMiB?: number,
): UsageText {
  const text: UsageText = {};
  if (percent !== undefined) text.cpu = `${percent.toFixed(percent < 10 ? 1 : 0)} % of a core`;
  else if (usage.cpuSeconds !== undefined) text.cpu = `${usage.cpuSeconds.toFixed(1)} s CPU time since start`;
  if (usage.memoryBytes !== undefined)
    text.memory = `${formatBytes(usage.memoryBytes)}${memoryLimitMiB ? ` of ${formatMiB(memoryLimitMiB)}` : ''}`;
  if (usage.diskBytes !== undefined) text.disk = formatBytes(usage.diskBytes);
  if (usage.processes !== undefined) text.processes = String(usage.processes);
  return text;
}

/** "3 · 1.2 GiB": how many checkpoints and the disk they hold together (sizes the server reported). */
export function checkpointsText(checkpoints: { sizeBytes?: number }[]): string {
  if (checkpoints.length === 0) return 'none';
  const sized = checkpoints.filter((c) => c.sizeBytes !== undefined);
  const total = sized.reduce((n, c) => n + (c.sizeBytes ?? 0), 0);
  return `${checkpoints.length} · ${sized.length ? formatBytes(total) : 'size unknown'}${sized.length && sized.length < checkpoints.length ? ' (some sizes unknown)' : ''}`;
}
