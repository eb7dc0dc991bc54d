// The linter (npm run lint): ESLint's and typescript-eslint's recommended rules over the sources,
// scripts and benchmarks. Formatting is prettier's (npm run format:check), so no style rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'web/dist/**', 'node_modules/**', 'bench/out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx,js,mjs}'],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: {
        process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly',
        clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly',
        TextDecoder: 'readonly', TextEncoder: 'readonly', performance: 'readonly', AbortController: 'readonly',
        AbortSignal: 'readonly', structuredClone: 'readonly', queueMicrotask: 'readonly', fetch: 'readonly',
        SharedArrayBuffer: 'readonly', Atomics: 'readonly', NodeJS: 'readonly',
      },
    },
    rules: {
      // `_name` marks a deliberately unused binding (destructuring a field away, a callback's slot).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // An empty catch is how "a network outcome, not an error" is written (STYLE.md 1); it carries a comment.
      'no-empty': ['error', { allowEmptyCatch: true }],
      // Off: it reports state shared with closures and loops as dead stores (runner.ts `pulling`,
      // locate.ts `synAck`, assigned in one callback and read in another).
      'no-useless-assignment': 'off',
    },
  },
  {
    // The explorer runs in the browser.
    files: ['web/src/**/*.{ts,tsx}'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', location: 'readonly', history: 'readonly', navigator: 'readonly', localStorage: 'readonly', requestAnimationFrame: 'readonly', cancelAnimationFrame: 'readonly', ResizeObserver: 'readonly', HTMLElement: 'readonly', HTMLCanvasElement: 'readonly', Event: 'readonly', KeyboardEvent: 'readonly', MouseEvent: 'readonly' } },
  },
);
