// Run as an unprivileged user by errors.test.ts: tries the socket given in argv[2] and prints the error as JSON.
import { createIncusBackend } from '../../../src/backends/incus/index';

async function main(): Promise<void> {
  const backend = createIncusBackend({ serverId: 'lab', socketPath: process.argv[2] });
  try {
    await backend.list();
    console.log(JSON.stringify({ name: 'none', kind: 'none', message: 'UNEXPECTED SUCCESS' }));
  } catch (err) {
    const e = err as { name: string; kind?: string; message: string };
    console.log(JSON.stringify({ name: e.name, kind: e.kind, message: e.message }));
  } finally {
    backend.dispose();
  }
}
void main();
