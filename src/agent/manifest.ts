// package.json's languageModelTools entries, derived from the catalog: VS Code reads tool names, descriptions and
// input schemas from the manifest before the extension runs, so they are generated, never written twice.
import type { AgentHost } from './host';
import { AgentToolCatalog } from './tools';

export const LM_TOOL_PREFIX = 'pixels_';

/** The `#` name of a tool in chat, e.g. "pixelsReadFile". */
export function toolReferenceName(tool: string): string {
  return 'pixels' + tool.replace(/(^|_)([a-z])/g, (_m, _s: string, c: string) => c.toUpperCase());
}

const ICONS: Record<string, string> = {
  exec: '$(terminal)',
  read_file: '$(file)',
  write_file: '$(save)',
  edit_file: '$(edit)',
  list_files: '$(files)',
  delete_file: '$(trash)',
  destroy_sandbox: '$(trash)',
  create_checkpoint: '$(history)',
  restore_checkpoint: '$(discard)',
  list_checkpoints: '$(history)',
  clone_sandbox: '$(copy)',
  start_sandbox: '$(debug-start)',
  stop_sandbox: '$(debug-stop)',
};

/** The catalog's tools as manifest entries (a host is not needed to describe them). */
export function languageModelToolsManifest(): Record<string, unknown>[] {
  const nowhere = {} as AgentHost;
  return new AgentToolCatalog(nowhere).tools.map((t) => ({
    name: LM_TOOL_PREFIX + t.name,
    displayName: t.title,
    toolReferenceName: toolReferenceName(t.name),
    canBeReferencedInPrompt: true,
    icon: ICONS[t.name] ?? '$(vm)',
    userDescription: t.description,
    modelDescription: t.description,
    tags: ['pixels', 'sandbox', t.readOnly ? 'read-only' : 'changes-sandbox'],
    inputSchema: t.inputSchema,
  }));
}
