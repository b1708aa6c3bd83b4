// Mocha runner for the worker suites (test/vscode/run.mjs --suite workers): the same runner as the normal suite,
// bundled into the workers' own output folder so that it finds only their *.test.js files.
export { run } from '../suite/index';
