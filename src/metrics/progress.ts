import cliProgress from 'cli-progress';

export interface ProgressOptions {
  /** Label before the bar, e.g. "train". */
  label: string;
  total: number;
  /** Output stream (stderr by default, so stdout stays clean for results). */
  stream?: NodeJS.WriteStream;
  /** Seconds between plain lines when the stream is not a terminal. */
  plainEverySeconds?: number;
}

/**
 * A progress bar that is a live bar on a terminal and degrades to a plain line every few seconds
 * when the output is a file or a CI log.
 */
export class Progress {
  private readonly bar: cliProgress.SingleBar;
  private readonly tty: boolean;
  private readonly stream: NodeJS.WriteStream;
  private readonly everyMs: number;
  private lastPlain = 0;
  private value = 0;
  private printedValue = -1;
  private fields: Record<string, string> = {};

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
    this.everyMs = (opts.plainEverySeconds ?? 5) * 1000;
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: `${opts.label} {bar} {percentage}% | {value}/{total} | {fields} | ETA {eta_formatted}`,
        barsize: 24,
        hideCursor: true,
        etaBuffer: 50,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    if (this.tty) this.bar.start(opts.total, 0, { fields: '' });
  }

  /** Sets the position and the named fields shown beside the bar (e.g. loss, samples/s). */
  update(value: number, fields: Record<string, string>): void {
    this.value = value;
    this.fields = fields;
    const text = this.fieldText();
    if (this.tty) {
      this.bar.update(value, { fields: text });
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain >= this.everyMs || value === this.opts.total) {
      this.lastPlain = now;
      this.plainLine(text);
    }
  }

  private plainLine(text: string): void {
    this.printedValue = this.value;
    this.stream.write(`${this.opts.label} ${this.value}/${this.opts.total} (${Math.floor((100 * this.value) / Math.max(this.opts.total, 1))}%) ${text}\n`);
  }

  /** Prints a line above the bar without breaking it. */
  log(line: string): void {
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${line}\n`);
      this.bar.update(this.value, { fields: this.fieldText() });
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  stop(): void {
    if (this.tty) this.bar.stop();
    // The last state, unless it is already the last line printed (update() throttles, so it may not be).
    else if (this.printedValue !== this.value) this.plainLine(this.fieldText());
  }

  private fieldText(): string {
    return Object.entries(this.fields).map(([k, v]) => `${k} ${v}`).join(' | ');
  }
}
