// Writes package.json's contributes.languageModelTools from the agent tool catalog (names, descriptions and input
// schemas have one source). Run after changing a tool: `node --import tsx scripts/lm-tools-manifest.ts`;
// test/unit/agent-manifest.test.ts fails while package.json and the catalog differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { languageModelToolsManifest } from '../src/agent/manifest';

const file = join(import.meta.dirname, '..', 'package.json');
const pkg = JSON.parse(readFileSync(file, 'utf8')) as { contributes: Record<string, unknown> };
pkg.contributes.languageModelTools = languageModelToolsManifest();
writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
console.log(`package.json: ${(pkg.contributes.languageModelTools as unknown[]).length} language model tools`);
