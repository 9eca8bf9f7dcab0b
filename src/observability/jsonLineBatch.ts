/**
 * JSON lines written as bytes straight into a batch buffer, for the access log: no string is
 * built per line, so a line leaves no garbage behind and the batch needs no encoding when it
 * goes out. The string-built lines it replaced spent about as much again as their own code
 * in V8's concatenation, flattening and regular-expression builtins; this writer's cost is
 * its own functions, 1.5 µs per request in a perf profile under load (docs/routes.md,
 * "Measurements").
 *
 * A line is `begin(maxBytes)`, then its pieces, then `end()`. Batches are regions of one
 * slab handed out as they are (never written again), so the destination may hold them
 * until its write completes; a new slab is taken when the current one is full.
 *
 * A batch goes out when it reaches `flushAt` bytes, `maxWaitMs` after its first line, or on
 * `flush()` (shutdown and exit).
 */
export class JsonLineBatch {
  private buf: Buffer;
  /** Where the batch not yet handed out begins. */
  private start = 0;
  private pos = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly out: (bytes: Buffer) => void,
    private readonly flushAt = 16384,
    private readonly maxWaitMs = 50,
    private readonly slabBytes = 65536,
  ) {
    this.buf = Buffer.allocUnsafeSlow(slabBytes);
  }

  /** Starts a line that takes at most `maxBytes` bytes. */
  begin(maxBytes: number): void {
    if (this.pos + maxBytes <= this.buf.length) return;
    this.flush();
    this.buf = Buffer.allocUnsafeSlow(Math.max(this.slabBytes, maxBytes));
    this.start = 0;
    this.pos = 0;
  }

  /** Text known to need no escaping (the line's own field names and punctuation, ASCII). */
  ascii(s: string): void {
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    this.pos = pos;
  }

  /**
   * `s` up to `end` as a JSON string literal. Printable ASCII other than `"` and `\` is copied
   * as it is; anything else (rare in a path, an id or a name) takes JSON.stringify's escaping
   * and UTF-8. At most 6 bytes per UTF-16 unit plus the quotes.
   */
  string(s: string, end = s.length): void {
    const buf = this.buf;
    const from = this.pos;
    let pos = from;
    buf[pos++] = 0x22;
    for (let i = 0; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        this.pos = from + buf.write(JSON.stringify(end === s.length ? s : s.slice(0, end)), from, 'utf8');
        return;
      }
      buf[pos++] = c;
    }
    buf[pos++] = 0x22;
    this.pos = pos;
  }

  /** A non-negative integer, at least `width` digits (zero-padded). */
  digits(n: number, width = 1): void {
    const buf = this.buf;
    let len = 1;
    for (let p = 10; p <= n; p *= 10) len++;
    if (len < width) len = width;
    let pos = this.pos + len;
    this.pos = pos;
    for (let i = 0; i < len; i++) {
      const q = Math.floor(n / 10);
      buf[--pos] = 0x30 + (n - q * 10);
      n = q;
    }
  }

  /** A number of milliseconds with up to 3 decimals, at most 20 bytes (`null` past 10¹⁵ ms or not a number). */
  millis(ms: number): void {
    let us = Math.round(ms * 1000);
    if (!(Math.abs(us) < 1e18)) {
      this.ascii('null');
      return;
    }
    if (us < 0) {
      this.buf[this.pos++] = 0x2d; // '-'
      us = -us;
    }
    const whole = Math.floor(us / 1000);
    const frac = us - whole * 1000;
    this.digits(whole);
    if (frac === 0) return;
    this.buf[this.pos++] = 0x2e; // '.'
    this.digits(frac, 3);
  }

  /** Ends the line; the batch goes out when it is full, else within maxWaitMs. */
  end(): void {
    this.buf[this.pos++] = 0x0a;
    if (this.pos - this.start >= this.flushAt) this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
      this.timer.unref();
    }
  }

  /** Hands every complete line so far to the destination. */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pos === this.start) return;
    const bytes = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    this.out(bytes);
  }
}
