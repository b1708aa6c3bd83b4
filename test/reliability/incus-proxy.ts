// A fault-injecting proxy in front of the Incus unix socket: the production client talks to this socket, the
// proxy forwards to incusd, and a rule can answer 5xx, drop the connection or rewrite the reply instead. A true
// boundary: nothing in src/ knows it is there. Upgrades (events, exec websockets) pass through untouched.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

export type ProxyAction =
  /** answer HTTP 500 with an Incus error envelope, without forwarding */
  | { kind: '5xx' }
  /** close the connection without forwarding */
  | { kind: 'drop-before' }
  /** forward, let incusd act, then close the connection instead of replying */
  | { kind: 'drop-after' }
  /** forward, then send `rewrite(body)` (status and headers kept, length fixed; `truncate` cuts the body short) */
  | { kind: 'rewrite'; rewrite: (body: Buffer) => Buffer; truncate?: boolean };

export interface ProxyRule {
  method: string;
  /** matched against the path without the query */
  path: RegExp;
  action: ProxyAction;
  /** how many requests it acts on (default 1) */
  times?: number;
}

export class IncusFaultProxy {
  readonly socket: string;
  private readonly rules: (ProxyRule & { left: number })[] = [];
  /** requests a rule acted on */
  hits = 0;

  private constructor(
    private readonly server: http.Server,
    socket: string,
    private readonly upstream: string,
  ) {
    this.socket = socket;
  }

  static async start(upstream: string): Promise<IncusFaultProxy> {
    const socket = join(tmpdir(), `pixels-incus-proxy-${randomBytes(4).toString('hex')}.sock`);
    const server = http.createServer();
    const proxy = new IncusFaultProxy(server, socket, upstream);
    server.on('request', (req, res) => proxy.onRequest(req, res));
    server.on('upgrade', (req, client, head) => proxy.onUpgrade(req, client as net.Socket, head));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    return proxy;
  }

  add(rule: ProxyRule): void {
    this.rules.push({ ...rule, left: rule.times ?? 1 });
  }

  /** Rules that have not acted yet. */
  armed(): number {
    return this.rules.filter((r) => r.left > 0).length;
  }

  clear(): void {
    this.rules.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.socket, { force: true });
  }

  private take(method: string, path: string): ProxyAction | undefined {
    const rule = this.rules.find((r) => r.left > 0 && r.method === method && r.path.test(path));
    if (!rule) return undefined;
    rule.left -= 1;
    this.hits += 1;
    return rule.action;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const action = this.take(req.method ?? 'GET', path);
    if (action?.kind === '5xx') {
      req.resume();
      const body = JSON.stringify({
        type: 'error',
        error: 'Injected server failure',
        error_code: 500,
        metadata: null,
      });
      res.writeHead(500, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (action?.kind === 'drop-before') {
      req.resume();
      req.socket.destroy();
      return;
    }
    const up = http.request(
      { socketPath: this.upstream, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          if (action?.kind === 'drop-after') {
            req.socket.destroy();
            return;
          }
          const headers = { ...upRes.headers };
          delete headers['transfer-encoding'];
          if (action?.kind === 'rewrite') {
            const out = action.rewrite(body);
            headers['content-length'] = String(action.truncate ? out.length + 64 : out.length);
            res.writeHead(upRes.statusCode ?? 500, headers);
            if (action.truncate) {
              res.write(out);
              setTimeout(() => req.socket.destroy(), 20); // fewer bytes than announced, then gone
            } else res.end(out);
            return;
          }
          headers['content-length'] = String(body.length);
          res.writeHead(upRes.statusCode ?? 500, headers);
          res.end(body);
        });
      },
    );
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  }

  private onUpgrade(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
    const upstream = net.connect(this.upstream, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const end = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', end);
    client.on('error', end);
    upstream.on('close', end);
    client.on('close', end);
  }
}
