// The heavy layers (backends with ws, the SSH layer with ssh2) are loaded on first use, not at activation.
// esbuild keeps a dynamically imported module's code uninitialised until the import runs, so nothing of ws or
// ssh2 executes before the view is shown. `loadedLayers()` lets the tests prove it.
const loaded = new Set<string>();

export function loadedLayers(): string[] {
  return [...loaded].sort();
}

export async function loadTrueNAS(): Promise<typeof import('../backends/truenas/index')> {
  const m = await import('../backends/truenas/index');
  loaded.add('truenas');
  return m;
}

export async function loadIncus(): Promise<typeof import('../backends/incus/index')> {
  const m = await import('../backends/incus/index');
  loaded.add('incus');
  return m;
}

export async function loadSsh(): Promise<typeof import('../ssh/index')> {
  const m = await import('../ssh/index');
  loaded.add('ssh');
  return m;
}

export async function loadGuest(): Promise<typeof import('../guest/index')> {
  const m = await import('../guest/index');
  loaded.add('guest');
  return m;
}
