// ESLint flat config (ESLint 9, typescript-eslint 8). Type-aware linting through the TypeScript
// project service, which picks up tsconfig.json (it includes both src/ and test/).
// Formatting is Prettier's job (.prettierrc): eslint-config-prettier, last, turns off the
// stylistic rules that would fight it.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier/flat';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores([
    'dist/',
    'node_modules/',
    'coverage/',
    'test-output/',
    // Root-level JavaScript config files (jest.config.js, this file); they are not in tsconfig.
    '*.js',
    '*.cjs',
    '*.mjs',
    '**/public/',
    '**/vendor/',
  ]),

  {
    name: 'blackhole/typescript',
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },

  {
    // Unit specs beside the code and everything under test/ (e2e, restart, support).
    // no-floating-promises stays on here too: an un-awaited expectation passes silently.
    name: 'blackhole/tests',
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: {
      // `expect(mock.method).toHaveBeenCalled()` passes a method without its `this`.
      '@typescript-eslint/unbound-method': 'off',
    },
  },

  prettier,
);
