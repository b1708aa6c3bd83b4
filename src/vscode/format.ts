// Text for tree rows. vscode-free so it is unit-tested directly. Ages use coarse buckets so a row's text changes
// at most once a minute (then hourly, daily), never every second.

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
export { formatMiB as formatMemory } from '../core/names';

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
