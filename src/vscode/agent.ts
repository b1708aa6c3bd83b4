// Agents in the editor: one tool catalog over the editor's services, offered as language model tools and through
// the MCP server (the same implementation behind both).
import * as vscode from 'vscode';
import { AgentToolCatalog } from '../agent/tools';
import { editorAgentHost } from './agentHost';
import { registerLanguageModelTools } from './lmTools';
import { registerMcpServer, type PixelsMcpServer } from './mcpServer';
import type { Services } from './services';

export interface AgentFeatures {
  catalog: AgentToolCatalog;
  mcp: PixelsMcpServer;
  /** The registered language model tools by name. */
  lmTools: Map<string, vscode.LanguageModelTool<object>>;
}

export function registerAgentFeatures(services: Services): AgentFeatures {
  const catalog = new AgentToolCatalog(editorAgentHost(services));
  let lmTools = new Map<string, vscode.LanguageModelTool<object>>();
  // Editors without the language model API (before 1.95) simply do not get the tools.
  if (typeof vscode.lm?.registerTool === 'function') {
    const registered = registerLanguageModelTools(catalog);
    services.context.subscriptions.push(...registered.disposables);
    lmTools = registered.tools;
  }
  return { catalog, mcp: registerMcpServer(services, catalog), lmTools };
}
