import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'test-results/**', '.lab/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Only the VS Code layer may import `vscode`.
    files: [
      'src/core/**',
      'src/backends/**',
      'src/ssh/**',
      'src/guest/**',
      'src/workflows/**',
      'src/bases/**',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'Only src/vscode may import vscode.' }],
          // The workflows are shared by the commands, the LM tools and the MCP server: they take no editor code.
          patterns: [{ group: ['**/vscode/**'], message: 'Only src/vscode may depend on src/vscode.' }],
        },
      ],
    },
  },
  {
    // The core is the bottom layer: config, names, errors. It imports nothing of the project outside itself.
    files: ['src/core/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'Only src/vscode may import vscode.' }],
          patterns: [{ group: ['../**'], message: 'src/core imports nothing outside src/core.' }],
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js', '**/*.cjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
