// The MCP server in the editor: started on first use (VS Code starting it through our server definition
// provider, the "Connect an External Agent" command, or at activation with pixels.mcp.autoStart), on loopback
// at pixels.mcp.port, behind a per-install bearer token kept in SecretStorage (generated once, never in settings
// or logs). Another window of this install serving the port already is reused: same token, same tools.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { PixelsError } from '../core/errors';
import { registerSecret } from '../core/log';
import { McpHttpServer, MCP_PATH } from '../agent/mcp/http';
import type { AgentToolCatalog } from '../agent/tools';
import { CommandIds } from './commandIds';
import { registerCommand } from './commands/register';
import { KeyringUnavailableError } from './secrets';
import type { Services } from './services';

export const MCP_PROVIDER_ID = 'pixels.mcp';
const TOKEN_KEY = 'pixels.mcp.token';
const SERVER_NAME = 'pixels-vscode';
const DEFAULT_PORT = 8766;

function configuredPort(): number {
  const port = vscode.workspace.getConfiguration('pixels').get<number>('mcp.port', DEFAULT_PORT);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : DEFAULT_PORT;
}

/** An MCP server of this install (another window) already answers on `url` with `token`. */
async function ourServerAnswers(url: string, token: string): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json, text/event-stream',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'pixels-probe', version: '1' },
        },
      }),
      signal: AbortSignal.timeout(3000),
    });
    const body = (await res.json()) as { result?: { serverInfo?: { name?: string } } };
    const session = res.headers.get('mcp-session-id');
    if (session)
      await fetch(url, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${token}`, 'Mcp-Session-Id': session },
      }).catch(() => undefined);
    return res.status === 200 && body.result?.serverInfo?.name === SERVER_NAME;
  } catch {
    return false;
  }
}

export class PixelsMcpServer implements vscode.Disposable {
  private server: McpHttpServer | undefined;
  private starting: Promise<string> | undefined;
  private readonly changed = new vscode.EventEmitter<void>();

  constructor(
    private readonly services: Services,
    private readonly catalog: AgentToolCatalog,
  ) {}

  /** The install's token: generated on first use and kept in SecretStorage. */
  async token(): Promise<string> {
    const secrets = this.services.context.secrets;
    let token: string | undefined;
    try {
      token = await secrets.get(TOKEN_KEY);
      if (!token) {
        token = randomBytes(32).toString('base64url');
        await secrets.store(TOKEN_KEY, token);
      }
    } catch (err) {
      throw new KeyringUnavailableError(err);
    }
    registerSecret(token);
    return token;
  }

  /** Starts the server if it is not running (or finds this install's server in another window); returns its URL. */
  start(): Promise<string> {
    this.starting ??= this.doStart().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async doStart(): Promise<string> {
    const token = await this.token();
    const port = configuredPort();
    const url = `http://127.0.0.1:${port}${MCP_PATH}`;
    const version = String(
      (this.services.context.extension.packageJSON as { version?: unknown }).version ?? '0.0.0',
    );
    const server = new McpHttpServer({
      catalog: this.catalog,
      token,
      port,
      identity: {
        name: SERVER_NAME,
        title: 'Pixels sandboxes',
        version,
        instructions:
          'Tools to create, run commands in, edit files of, checkpoint, restore, clone and destroy Pixels sandboxes (disposable Linux containers). Sandbox names are given without the "px-" prefix; call list_sandboxes first.',
      },
      onLog: (line) => this.services.log.info(`mcp: ${line}`),
    });
    try {
      await server.listen();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && (await ourServerAnswers(url, token))) {
        this.services.log.info(`mcp: another window serves ${url}; using it`);
        return url;
      }
      const reason = err instanceof Error ? err.message : String(err);
      throw new PixelsError(
        'connection',
        `The Pixels MCP server could not listen on 127.0.0.1:${port} (${reason}). Choose another port in the setting pixels.mcp.port.`,
      );
    }
    this.server = server;
    this.services.log.info(`mcp: serving ${url}`);
    return url;
  }

  /** For VS Code: the definition (no secret), and the token added when VS Code starts it. */
  provider(): vscode.McpServerDefinitionProvider<vscode.McpHttpServerDefinition> {
    return {
      onDidChangeMcpServerDefinitions: this.changed.event,
      provideMcpServerDefinitions: () => [
        new vscode.McpHttpServerDefinition(
          'Pixels sandboxes',
          vscode.Uri.parse(`http://127.0.0.1:${configuredPort()}${MCP_PATH}`),
        ),
      ],
      resolveMcpServerDefinition: async (definition) => {
        const url = await this.start();
        definition.uri = vscode.Uri.parse(url);
        definition.headers = { ...definition.headers, Authorization: `Bearer ${await this.token()}` };
        return definition;
      },
    };
  }

  /** The port setting changed: the next start uses it, and VS Code re-reads the definition. */
  async restart(): Promise<void> {
    const running = this.server !== undefined;
    await this.server?.close();
    this.server = undefined;
    this.starting = undefined;
    if (running) await this.start();
    this.changed.fire();
  }

  dispose(): void {
    void this.server?.close();
    this.changed.dispose();
  }
}

/** What an agent outside the editor needs: the claude CLI line and a JSON config (both carry the token). */
export function externalConfig(url: string, token: string): { claude: string; json: string } {
  return {
    claude: `claude mcp add --transport http pixels ${url} --header "Authorization: Bearer ${token}"`,
    json: JSON.stringify(
      { mcpServers: { pixels: { type: 'http', url, headers: { Authorization: `Bearer ${token}` } } } },
      null,
      2,
    ),
  };
}

async function connectExternalAgent(mcp: PixelsMcpServer, arg: unknown): Promise<string | undefined> {
  const url = await mcp.start();
  const config = externalConfig(url, await mcp.token());
  const copyClaude = 'Copy claude Command';
  const copyJson = 'Copy JSON Config';
  const preset = typeof arg === 'object' && arg !== null ? (arg as { copy?: unknown }).copy : undefined;
  const choice =
    preset === 'claude'
      ? copyClaude
      : preset === 'json'
        ? copyJson
        : await vscode.window.showInformationMessage(
            `The Pixels MCP server runs at ${url} while VS Code is open. Agents outside the editor need its token (it is in what you copy: keep it private).`,
            copyClaude,
            copyJson,
          );
  if (choice === undefined) return undefined;
  await vscode.env.clipboard.writeText(choice === copyClaude ? config.claude : config.json);
  vscode.window.setStatusBarMessage('Copied the Pixels MCP configuration (with its token)', 4000);
  return url;
}

export function registerMcpServer(services: Services, catalog: AgentToolCatalog): PixelsMcpServer {
  const mcp = new PixelsMcpServer(services, catalog);
  services.context.subscriptions.push(mcp);
  // VS Code before 1.101 (or an editor without MCP) has no provider API; the tools and the command still work.
  if (typeof vscode.lm.registerMcpServerDefinitionProvider === 'function')
    services.context.subscriptions.push(
      vscode.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, mcp.provider()),
    );
  registerCommand(services, CommandIds.connectExternalAgent, 'Connect an external agent', (arg) =>
    connectExternalAgent(mcp, arg),
  );
  services.context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('pixels.mcp.port'))
        void mcp.restart().catch((err: unknown) => services.log.warn(`mcp: ${String(err)}`));
    }),
  );
  if (vscode.workspace.getConfiguration('pixels').get<boolean>('mcp.autoStart', false))
    void mcp
      .start()
      .catch((err: unknown) => services.log.warn(`mcp: ${err instanceof Error ? err.message : String(err)}`));
  return mcp;
}
