// Smoke test in the real extension host: the extension under development is there and activates.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'pixels-dev.pixels-vscode';

suite('activation', () => {
  test(`${EXTENSION_ID} is loaded from the development folder`, () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not among the extensions VS Code loaded`);
    assert.equal(extension.packageJSON.name, 'pixels-vscode');
    assert.match(extension.packageJSON.main, /dist\/extension\.js$/);
  });

  test('activates, and the activation time is logged', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension);
    const wasActive = extension.isActive;
    const started = performance.now();
    await extension.activate();
    const ms = performance.now() - started;
    assert.equal(extension.isActive, true, 'extension.isActive is false after activate()');
    // The extension reports how long its activate() took (exports.activationMs). If an activation event or an
    // earlier suite activated it already, that is the only number there is.
    const reported: unknown = (extension.exports as { activationMs?: unknown } | undefined)?.activationMs;
    const body =
      typeof reported === 'number' ? `activate() body ${reported.toFixed(1)} ms` : 'no activationMs export';
    console.log(
      wasActive
        ? `activation: already active when this test started (${body})`
        : `activation: ${ms.toFixed(1)} ms for extension.activate() including module load (${body})`,
    );
  });
});
