'use strict';
// What the operator scripts (loadtest, soak, seed-keys) share on the command line: flags
// parsed strictly, every mistake a UsageError, and the convention that a usage mistake
// prints the message and the usage and exits 2.

const { parseArgs } = require('node:util');

class UsageError extends Error {}

/** node:util parseArgs, strict, no positionals; its errors become UsageErrors. */
function parseFlags(argv, options) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(err.message);
  }
}

/** A flag's value as a positive integer; "1_000_000" reads as 1000000. */
function positiveInteger(text, flag) {
  const n = Number(String(text).replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * The options `parse` returns, or: on a mistake, the message and the usage on stderr and
 * exit 2; for --help (options.help), the usage on stdout and null.
 */
function optionsOrExit(name, usage, parse) {
  let options;
  try {
    options = parse();
  } catch (err) {
    process.stderr.write(`${name}: ${err.message}\n\n${usage}\n`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(`${usage}\n`);
    return null;
  }
  return options;
}

module.exports = { UsageError, parseFlags, positiveInteger, optionsOrExit };
