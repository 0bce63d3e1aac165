import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EVENTS_FILE } from '../metrics/events.js';
import { TRACE_FILE } from '../metrics/trace.js';
import {
  ExperimentFileError, type Run, type RunConfig, loadRun, parseEventLine, parseMetricsLine, readConfig, readResult,
} from '../metrics/reader.js';
import type { ResultFile } from '../metrics/result_file.js';
import { RunState } from './state.js';

/**
 * Follows a growing JSON-lines file: each poll returns the complete lines appended since the last
 * one. A file that shrank or was replaced (a rerun under the same name resets the folder) restarts
 * from its beginning, and the poll says so.
 */
export class LineFollower {
  private offset = 0;
  private ino = -1;
  private partial = '';

  constructor(readonly file: string) {}

  poll(): { lines: string[]; reset: boolean } {
    let st;
    try {
      st = statSync(this.file);
    } catch {
      const reset = this.offset > 0;
      this.restart(-1);
      return { lines: [], reset };
    }
    let reset = false;
    if (st.ino !== this.ino || st.size < this.offset) {
      reset = this.ino !== -1 && this.offset > 0;
      this.restart(st.ino);
    }
    if (st.size === this.offset) return { lines: [], reset };
    const fd = openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(st.size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const text = this.partial + buf.subarray(0, n).toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      return { lines: parts.filter((l) => l.trim() !== ''), reset };
    } finally {
      closeSync(fd);
    }
  }

  private restart(ino: number): void {
    this.offset = 0;
    this.partial = '';
    this.ino = ino;
  }
}

/** Where a dashboard's run comes from: a live (or finished) experiment folder, or a fixed file. */
export interface RunSource {
  readonly label: string;
  readonly path: string;
  /** The experiment folder, if any (trace.json is served from it). */
  readonly dir: string | null;
  /** Reads what is new into the state; returns a new state when the run restarted from scratch. */
  poll(state: RunState): RunState | null;
}

/**
 * Opens a folder (followed as it grows, so a running experiment can be watched from another
 * terminal) or a result/run json (read once; a result.json's folder is followed if it has one).
 * Everything is read and validated first, so a bad file is refused with its name and line.
 */
export function openSource(path: string): RunSource {
  const run = loadRun(path);
  if (run.dir !== null && run.source !== run.dir && run.result) return new FolderSource(run.dir, run.name, run.result);
  if (run.dir !== null) return new FolderSource(run.dir, run.name);
  return new FixedSource(run, path);
}

/** Follows a live experiment folder, which may not exist yet (the run is starting). */
export function followFolder(dir: string, name: string): RunSource {
  return new FolderSource(dir, name);
}

class FolderSource implements RunSource {
  readonly label: string;
  private metrics: LineFollower;
  private events: LineFollower;
  private configMtime = -1;
  private resultMtime = -1;

  constructor(readonly dir: string, name: string, private readonly fixedResult?: ResultFile) {
    this.label = name;
    this.metrics = new LineFollower(join(dir, 'metrics.jsonl'));
    this.events = new LineFollower(join(dir, EVENTS_FILE));
  }

  get path(): string {
    return this.dir;
  }

  poll(state: RunState): RunState | null {
    // Events first: a rank's last metrics lines are written before it reports finishing.
    let e = this.events.poll();
    let m = this.metrics.poll();
    let s = state;
    let fresh = false;
    if (m.reset || e.reset) {
      // The run restarted (a rerun under the same name): read everything again into a new state.
      s = new RunState(this.label, this.dir);
      fresh = true;
      this.metrics = new LineFollower(this.metrics.file);
      this.events = new LineFollower(this.events.file);
      this.configMtime = -1;
      this.resultMtime = -1;
      e = this.events.poll();
      m = this.metrics.poll();
    }
    this.readConfig(s);
    for (const line of e.lines) this.safely(s, () => s.addEvent(parseEventLine(parseJson(line, this.events.file), this.events.file)));
    for (const line of m.lines) this.safely(s, () => s.addMetric(parseMetricsLine(parseJson(line, this.metrics.file), this.metrics.file)));
    this.readResult(s);
    s.trace = existsSync(join(this.dir, TRACE_FILE));
    s.settle();
    return fresh ? s : null;
  }

  private readConfig(s: RunState): void {
    const file = join(this.dir, 'config.json');
    const mtime = mtimeOf(file);
    if (mtime === this.configMtime || mtime < 0) return;
    this.configMtime = mtime;
    this.safely(s, () => s.setConfig(readConfig(file) as RunConfig));
  }

  private readResult(s: RunState): void {
    if (this.fixedResult) {
      if (!s.result) s.setResult(this.fixedResult);
      return;
    }
    const file = join(this.dir, 'result.json');
    const mtime = mtimeOf(file);
    if (mtime === this.resultMtime || mtime < 0) return;
    this.resultMtime = mtime;
    this.safely(s, () => s.setResult(readResult(file)));
  }

  /** A bad line is reported on the page, once, instead of stopping the dashboard. */
  private safely(s: RunState, f: () => void): void {
    try {
      f();
    } catch (err) {
      s.addError(err instanceof Error ? err.message : String(err));
    }
  }
}

class FixedSource implements RunSource {
  readonly label: string;
  readonly dir = null;
  private done = false;

  constructor(private readonly run: Run, readonly path: string) {
    this.label = run.name;
  }

  poll(state: RunState): RunState | null {
    if (this.done) return null;
    this.done = true;
    if (this.run.config) state.setConfig(this.run.config);
    for (const e of this.run.events) state.addEvent(e);
    for (const rec of this.run.metrics.steps) state.addMetric({ kind: 'step', rec });
    for (const rec of this.run.metrics.evals) state.addMetric({ kind: 'eval', rec });
    // Lines of other kinds (train --sample-every's samples) the state shows or ignores itself.
    for (const rec of this.run.metrics.other) state.addMetric({ kind: 'other', rec });
    if (this.run.result) state.setResult(this.run.result);
    state.finish();
    state.settle();
    return null;
  }
}

function parseJson(line: string, file: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new ExperimentFileError(file, `not JSON: ${line.slice(0, 80)}`);
  }
}

function mtimeOf(file: string): number {
  if (!existsSync(file)) return -1;
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}
