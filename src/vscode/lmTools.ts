// The agent tools as VS Code language model tools (agent mode, `#` references). Each is `pixels_<tool>` in
// package.json's languageModelTools; state-changing tools ask first through prepareInvocation with a message
// that says exactly what will happen, read tools never ask. The catalog does the work (the MCP server runs the same).
import * as vscode from 'vscode';
import { LM_TOOL_PREFIX } from '../agent/manifest';
import { toolErrorMessage, type AgentTool, type AgentToolCatalog } from '../agent/tools';

function signalOf(token: vscode.CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}

function lmTool(catalog: AgentToolCatalog, tool: AgentTool): vscode.LanguageModelTool<object> {
  return {
    async prepareInvocation(options) {
      const invocationMessage = `${tool.title}…`;
      if (tool.readOnly) return { invocationMessage };
      try {
        const c = await catalog.confirmation(tool.name, options.input);
        if (c)
          return {
            invocationMessage,
            confirmationMessages: { title: c.title, message: new vscode.MarkdownString(c.message) },
          };
      } catch (err) {
        // The call cannot run as given (bad input, no such sandbox): still ask, and invoke says what is wrong.
        return {
          invocationMessage,
          confirmationMessages: {
            title: `${tool.title}?`,
            message: `This call will fail: ${toolErrorMessage(err)}`,
          },
        };
      }
      return { invocationMessage };
    },
    async invoke(options, token) {
      try {
        const result = await catalog.call(tool.name, options.input, { signal: signalOf(token) });
        return new vscode.LanguageModelToolResult([
          new vscode.LanguageModelTextPart(JSON.stringify(result, null, 2)),
        ]);
      } catch (err) {
        // tools.md: throw, with a message that tells the model what to do next.
        throw new Error(toolErrorMessage(err), { cause: err });
      }
    },
  };
}

/** Registers every tool; returns the registrations and the tool objects by LM name (the test API prepares with them). */
export function registerLanguageModelTools(catalog: AgentToolCatalog): {
  disposables: vscode.Disposable[];
  tools: Map<string, vscode.LanguageModelTool<object>>;
} {
  const tools = new Map(
    catalog.tools.map((tool) => [LM_TOOL_PREFIX + tool.name, lmTool(catalog, tool)] as const),
  );
  return { disposables: [...tools].map(([name, tool]) => vscode.lm.registerTool(name, tool)), tools };
}
