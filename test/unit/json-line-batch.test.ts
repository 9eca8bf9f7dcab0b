import { JsonLineBatch } from '../../src/observability/jsonLineBatch';

/** A batch whose handed-out regions are kept as they were handed out (not copied). */
function capture(flushAt = 16384, maxWaitMs = 50, slabBytes = 65536): { batch: JsonLineBatch; out: Buffer[] } {
  const out: Buffer[] = [];
  return { batch: new JsonLineBatch((bytes) => out.push(bytes), flushAt, maxWaitMs, slabBytes), out };
}

function line(batch: JsonLineBatch, write: (b: JsonLineBatch) => void, maxBytes = 256): void {
  batch.begin(maxBytes);
  write(batch);
  batch.end();
}

describe('JSON lines written as bytes', () => {
  test('strings: plain ASCII as it is, anything else escaped as JSON.stringify does, cut at `end`', () => {
    const { batch, out } = capture();
    const values = ['plain /v1/items', 'q"uote', 'back\\slash', 'tab\tnl\n', 'caf\u00e9', 'emoji \u{1f600}', 'lone \ud800', '\u2028', ''];
    for (const v of values) line(batch, (b) => b.string(v));
    line(batch, (b) => b.string('/path?query', 5));
    line(batch, (b) => b.string('/caf\u00e9?q', 5));
    batch.flush();
    const lines = Buffer.concat(out).toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l) as string)).toEqual([...values, '/path', '/caf\u00e9']);
    expect(lines.slice(0, values.length)).toEqual(values.map((v) => JSON.stringify(v)));
  });

  test('integers zero-padded to a width; milliseconds to 3 decimals; null when not a number', () => {
    const { batch, out } = capture();
    const ints: Array<[number, number, string]> = [[0, 1, '0'], [7, 3, '007'], [42, 3, '042'], [999, 3, '999'], [200, 1, '200'], [1234567, 1, '1234567']];
    for (const [n, width] of ints) line(batch, (b) => b.digits(n, width));
    const ms: Array<[number, string]> = [[0, '0'], [0.0004, '0'], [2.5, '2.500'], [12.0456, '12.046'], [0.07, '0.070'], [1999.9996, '2000'], [-1.5, '-1.500'], [NaN, 'null'], [Infinity, 'null'], [1e20, 'null']];
    for (const [n] of ms) line(batch, (b) => b.millis(n));
    batch.flush();
    expect(Buffer.concat(out).toString().split('\n').slice(0, -1)).toEqual([...ints.map((i) => i[2]), ...ms.map((m) => m[1])]);
  });

  test('a batch goes out at flushAt bytes; regions handed out stay intact when the slab is replaced', () => {
    const { batch, out } = capture(100, 60_000, 256);
    const written: string[] = [];
    for (let i = 0; i < 40; i++) {
      const text = `line-${i}-${'x'.repeat(i % 7)}`;
      written.push(JSON.stringify(text));
      line(batch, (b) => b.string(text), 32);
    }
    batch.flush();
    // 40 lines of 10-20 bytes: batches of whole lines, ≥ 100 bytes unless the slab was full.
    expect(out.length).toBeGreaterThan(4);
    expect(out.length).toBeLessThan(15);
    expect(out.every((b) => b[b.length - 1] === 0x0a)).toBe(true);
    expect(out.filter((b) => b.length < 100).length).toBeLessThanOrEqual(Math.ceil(out.length / 2));
    expect(Buffer.concat(out).toString().split('\n').slice(0, -1)).toEqual(written);
  });

  test('a line larger than the slab gets a slab of its own', () => {
    const { batch, out } = capture(100, 60_000, 64);
    const long = 'y'.repeat(1000);
    line(batch, (b) => b.string('short'));
    batch.begin(6 * long.length + 8);
    batch.string(long);
    batch.end();
    line(batch, (b) => b.string('after'));
    batch.flush();
    expect(Buffer.concat(out).toString().split('\n')).toEqual(['"short"', `"${long}"`, '"after"', '']);
  });

  test('a batch below flushAt goes out maxWaitMs after its first line, and flush() with nothing pending writes nothing', async () => {
    const { batch, out } = capture(16384, 20);
    batch.flush();
    expect(out).toHaveLength(0);
    line(batch, (b) => b.ascii('{"a":1}'));
    expect(out).toHaveLength(0);
    const deadline = Date.now() + 5000;
    while (out.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(out.map((b) => b.toString())).toEqual(['{"a":1}\n']);
  });
});
