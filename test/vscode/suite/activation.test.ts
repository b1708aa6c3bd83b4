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
    // Something (an activation event) may have activated it before this test: then there is nothing to time here.
    console.log(
      wasActive
        ? 'activation: already active when the test started (activated by an activation event)'
        : `activation: ${ms.toFixed(1)} ms (extension.activate())`,
    );
  });
});
