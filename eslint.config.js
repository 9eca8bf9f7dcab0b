// Lint: named exports only, no `any`, type-only imports marked, and the dependency rules
// of STYLE.md: each third-party library has one owning file, and the gateway and admin
// ports never import each other.
const tseslint = require('typescript-eslint');

const owned = (name, owner) => ({ name, allowTypeImports: true, message: `only ${owner} imports ${name}` });
const everywhere = [
  owned('http-proxy', 'src/proxy/upstreamProxy.ts'),
  owned('undici', 'src/proxy/upstreamProxy.ts'),
  owned('opossum', 'src/limit/storeBreaker.ts'),
  owned('prom-client', 'src/observability/metrics.ts'),
  owned('pino', 'src/observability/logger.ts'),
  owned('ioredis', 'src/redisClient.ts'),
  owned('convict', 'src/config/'),
];
const restrict = (paths, patterns = []) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { paths, patterns }],
});
const except = (...names) => everywhere.filter((p) => !names.includes(p.name));

module.exports = tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench-results/', 'scripts/', '*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'named exports only' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  { files: ['src/**/*.ts'], rules: restrict(everywhere) },
  { files: ['src/proxy/upstreamProxy.ts'], rules: restrict(except('http-proxy', 'undici')) },
  { files: ['src/limit/storeBreaker.ts'], rules: restrict(except('opossum')) },
  { files: ['src/observability/metrics.ts'], rules: restrict(except('prom-client')) },
  { files: ['src/observability/logger.ts'], rules: restrict(except('pino')) },
  { files: ['src/redisClient.ts'], rules: restrict(except('ioredis')) },
  { files: ['src/config/**/*.ts'], rules: restrict(except('convict')) },
  {
    files: ['src/gateway/**/*.ts'],
    rules: restrict(everywhere, [{ group: ['../admin/*'], message: 'the gateway and admin ports never import each other' }]),
  },
  {
    files: ['src/admin/**/*.ts'],
    rules: restrict(everywhere, [{ group: ['../gateway/*'], message: 'the gateway and admin ports never import each other' }]),
  },
  {
    // Stores report through callbacks app.ts hands them; they never reach for metrics or health.
    files: ['src/limit/*Store*.ts', 'src/auth/*Store*.ts', 'src/sync/*.ts'],
    rules: restrict(everywhere, [{ group: ['../observability/*', '../health/healthState'], allowTypeImports: true, message: 'stores report through callbacks' }]),
  },
);
