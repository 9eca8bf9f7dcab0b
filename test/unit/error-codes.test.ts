import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../../src/errors';

// Clients match on `error`; every code they can see is documented (fastify keeps the same check).
test('every error code is documented in docs/responses.md', () => {
  const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'responses.md'), 'utf8');
  const undocumented = Object.keys(ERROR_CODES).filter((code) => !doc.includes(`\`${code}\``));
  expect(undocumented).toEqual([]);
});
