// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((name) => `node:${name}`)];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.tools/**',
      '.data/**',
      'coverage/**',
      '*.mjs',
      '*.cjs',
      'jest.config.js',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // The import rule: which folder may import which (README, "Layout"). Each file is in exactly one of
  // these blocks, because a later block's options for a rule replace an earlier one's. Relative imports
  // are matched by the folder they reach; `import type` is erased at build time and always allowed.
  {
    files: ['**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Workflow code is replayed: it must stay deterministic, so no Node built-ins (fs, crypto, net, ...)
    // and nothing outside workflows/ but the Temporal workflow SDK and its common types.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Workflow code must be deterministic: do side effects in an activity.',
          })),
          patterns: [
            {
              regex: '^\\.\\./',
              allowTypeImports: true,
              message: 'Workflows import only workflows/ (and types, with `import type`).',
            },
            {
              regex: '^(?!\\.|@temporalio/(workflow|common)(/|$))',
              allowTypeImports: true,
              message: 'Workflows import only @temporalio/workflow and @temporalio/common.',
            },
          ],
        },
      ],
    },
  },
  {
    // Secrets: passwords and private files; nothing but Node and itself, so it can be read in one sitting.
    files: ['secrets/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^\\.\\./', message: 'secrets/ imports only Node and secrets/ itself.' },
            { regex: '^(?!\\.|node:)', message: 'secrets/ imports only Node and secrets/ itself.' },
          ],
        },
      ],
    },
  },
  {
    // Graph: Microsoft Graph, never Temporal or the CLI.
    files: ['graph/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(client|worker|activities|temporal|simulator)(/|$)',
              message:
                'graph/ talks to Microsoft Graph only: it imports no client/, worker/, activities/, temporal/ or simulator/.',
            },
          ],
        },
      ],
    },
  },
  {
    // Jobs: each job file format, read and written by one module; no Graph calls.
    files: ['jobs/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(client|worker|activities|temporal|simulator|graph)(/|$)',
              message:
                'jobs/ reads and writes job files only: it imports no graph/, client/, worker/, activities/, temporal/ or simulator/.',
            },
          ],
        },
      ],
    },
  },
  {
    // Temporal plumbing: connection settings, data converter, codec server, tracing; no CLI.
    files: ['temporal/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(client|worker|activities|simulator)(/|$)',
              message: 'temporal/ imports no client/, worker/, activities/ or simulator/.',
            },
          ],
        },
      ],
    },
  },
  {
    // Activities: thin adapters over graph/, jobs/ and secrets/.
    files: ['activities/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(client|worker|simulator)(/|$)',
              message: 'activities/ imports no client/, worker/ or simulator/.',
            },
          ],
        },
      ],
    },
  },
  {
    // The worker may be imported by the CLI, but the CLI by nobody else.
    files: ['worker/**/*.ts', 'simulator/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./client(/|$)',
              message: 'Only client/, bench/ and test/ import client/.',
            },
            {
              regex: '^\\.\\./worker(/|$)',
              message: 'Only worker/, client/, bench/ and test/ import worker/.',
            },
          ],
        },
      ],
    },
  },
  {
    // `bulk-reset help` must not load the simulator, the demo or @temporalio/worker: the commands that
    // need them import them with `await import(...)`, which this rule does not see.
    files: ['client/cli.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./simulator(/|$)|\\.\\./worker(/|$)|\\./demo$|@temporalio/worker)',
              allowTypeImports: true,
              message:
                'Load the simulator, the demo and the worker lazily, with `await import(...)` in the command that needs them.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
