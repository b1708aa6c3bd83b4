// The one service container, built in activate() and disposed in reverse order of creation. Building it is
// cheap: no server is contacted and no backend or SSH code is loaded until the view is shown or a command runs.
import { join } from 'node:path';
import * as vscode from 'vscode';
import { UntrustedCertificateError } from '../core/certificate';
import { TRUST_BUTTON } from './errors';
import { SandboxCacheFile } from '../core/sandboxCache';
import { ApiKeyStore } from './secrets';
import { Log } from './log';
import { ServerRegistry } from './servers';
import { SandboxStore } from './store';
import { SandboxTreeProvider, type PixelsNode } from './tree';
import { RefreshController } from './refresh';
import { SshAccess } from '../workflows/sshAccess';
import { followSandboxAddresses } from './followAddresses';
import { EgressMemory } from './egressMemory';
import { EgressTracker } from '../workflows/egressTracker';
import { BACKEND_PRODUCT } from '../core/backend';
import { showEgressNotice } from './egressNotice';
import { Provisioning } from '../workflows/provisioning';
import { provisionInputs } from './provisioning';
import { SandboxWindowStatus } from './sandboxWindow';
import { ResourceMonitor } from './resources';
import { BasesFeature } from './bases';
import { SessionService } from './sessions';

export class Services implements vscode.Disposable {
  private readonly owned: vscode.Disposable[] = [];
  readonly log: Log;
  readonly keys: ApiKeyStore;
  readonly registry: ServerRegistry;
  readonly store: SandboxStore;
  readonly tree: SandboxTreeProvider;
  readonly view: vscode.TreeView<PixelsNode>;
  readonly refresh: RefreshController;
  readonly ssh: SshAccess;
  readonly egress: EgressMemory;
  readonly egressStatus: EgressTracker;
  readonly provisioning: Provisioning;
  /** The local sandbox cache (last known lists per server). */
  readonly cachePath: string;
  readonly sandboxWindow: SandboxWindowStatus;
  readonly resources: ResourceMonitor;
  /** Bases and the agent lifecycle policy (src/bases). */
  readonly bases: BasesFeature;
  readonly sessions: SessionService;

  constructor(readonly context: vscode.ExtensionContext) {
    this.log = this.own(new Log());
    this.keys = new ApiKeyStore(context.secrets);
    this.egress = new EgressMemory(context.globalState);
    this.registry = this.own(new ServerRegistry(this.log, this.keys));
    // Last session's sandboxes, so the tree shows at once; read in the background (a local file, no server).
    this.cachePath = join(context.globalStorageUri.fsPath, 'sandbox-cache.json');
    const cache = new SandboxCacheFile(this.cachePath, (reason) => this.log.warn(reason));
    this.store = this.own(new SandboxStore(this.registry, this.log, cache));
    // Built before the tree (which reads them); they load nothing until a sandbox is listed or provisioned.
    this.ssh = this.own(new SshAccess(this.registry, this.log));
    this.egressStatus = this.own(
      new EgressTracker({
        ssh: this.ssh,
        log: this.log,
        backendOf: (serverId) => this.registry.backend(serverId),
        productOf: (serverId) => BACKEND_PRODUCT[this.registry.server(serverId).kind],
        notify: showEgressNotice(this.log),
      }),
    );
    this.provisioning = this.own(
      new Provisioning(this.ssh, this.log, context.globalState, this.egressStatus, () =>
        provisionInputs(this.registry),
      ),
    );
    this.resources = new ResourceMonitor(this);
    this.sessions = this.own(new SessionService(this.ssh, this.log, context.globalState));
    this.tree = this.own(
      new SandboxTreeProvider(
        this.registry,
        this.store,
        this.egress,
        this.egressStatus,
        this.provisioning,
        this.resources,
        this.sessions,
      ),
    );
    this.view = this.own(
      vscode.window.createTreeView('pixels.sandboxes', {
        treeDataProvider: this.tree,
        showCollapseAll: true,
      }),
    );
    this.bases = this.own(new BasesFeature(this));
    this.tree.basesView = {
      infos: (serverId) => this.bases.infos(serverId),
      lifecycleText: (serverId, sandbox) => this.bases.lifecycleText(serverId, sandbox),
    };
    this.tree.onMessage = (message) => {
      this.view.message = message;
    };
    this.tree.onUnreachable = (reason) => {
      this.log.warn(`view: ${reason}`);
      // A server refused for its certificate gets the way to look at the new one (and trust it, or not).
      const refused = this.registry.servers().find((s) => {
        const state = this.store.state(s.id);
        return state.status === 'error' && state.error instanceof UntrustedCertificateError;
      });
      const buttons = refused ? [TRUST_BUTTON, 'Show Logs'] : ['Retry', 'Show Logs'];
      void vscode.window.showWarningMessage(reason, ...buttons).then((choice) => {
        if (choice === 'Retry') void vscode.commands.executeCommand('pixels.refresh');
        if (choice === 'Show Logs') this.log.show();
        if (choice === TRUST_BUTTON && refused)
          void vscode.commands.executeCommand('pixels.trustNewCertificate', { server: refused.id });
      });
    };
    this.refresh = this.own(new RefreshController(this.registry, this.store, this.log));
    this.refresh.attach(this.view);
    // Remote-SSH entries follow a sandbox's new IP (only those we wrote; from lists already loaded).
    this.own(followSandboxAddresses(this));
    // In a Remote-SSH window on one of our sandboxes: its status bar item (nothing is read in other windows).
    this.sandboxWindow = this.own(new SandboxWindowStatus(this));
  }

  private own<T extends vscode.Disposable>(d: T): T {
    this.owned.push(d);
    return d;
  }

  dispose(): void {
    for (const d of this.owned.splice(0).reverse()) {
      try {
        d.dispose();
      } catch (err) {
        this.log?.warn(`dispose: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}
