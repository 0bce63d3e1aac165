/**
 * What one fault-test scenario's run left, read back: the fault's own `fault_injected` record and
 * the monitors' detections from its events.jsonl, and whether the run ran at all. Only what this
 * invocation produced counts: lines older than the launch are ignored (the folder is cleared before
 * each launch as well), and a run that recorded no step and injected nothing did not run — it is
 * reported as such, with the reason its log gives, and fails the verdict.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Rule } from '../train/loop/monitors.js';

export interface EventLine {
  kind: 'detection' | 'fault_injected' | string;
  time: number;
  step: number | null;
  rule?: Rule;
  severity?: string;
  ranks?: number[];
  observer?: number;
  detail: string;
  spec?: string;
  rank?: number;
}

export interface Outcome {
  /** The run recorded at least one step or injected its fault in this invocation. */
  ran: boolean;
  /** Why it did not run (its log's error line), null when it ran. */
  notRunReason: string | null;
  injected: EventLine | null;
  hit: EventLine | null;
  others: EventLine[];
}

export interface OutcomeInput {
  /** events.jsonl lines and whether metrics.jsonl holds a step record written since `since`. */
  events: EventLine[];
  stepsRecorded: boolean;
  /** Epoch ms the launch began: anything older belongs to another invocation. */
  since: number;
  fault: string;
  rank: number;
  expect: readonly Rule[];
  log: string;
  exitCode: number | null;
}

export function scenarioOutcome(i: OutcomeInput): Outcome {
  const fresh = i.events.filter((e) => typeof e.time === 'number' && e.time >= i.since);
  const injected = fresh.find((e) => e.kind === 'fault_injected' && e.spec === i.fault) ?? null;
  const ran = injected !== null || i.stepsRecorded;
  const detections = ran ? fresh.filter((e) => e.kind === 'detection') : [];
  const counts = (e: EventLine): boolean =>
    injected !== null && i.expect.includes(e.rule!) && (e.ranks ?? []).includes(i.rank) && e.time >= injected.time &&
    (e.step === null || e.step >= injected.step!);
  const hit = detections.filter(counts).sort((a, b) => a.time - b.time)[0] ?? null;
  return {
    ran, injected, hit,
    others: detections.filter((e) => e !== hit && !counts(e)),
    notRunReason: ran ? null : notRunReason(i.log, i.exitCode),
  };
}

/** The log's error line (the CLI prints one), else its last line, else the exit code. */
function notRunReason(log: string, exitCode: number | null): string {
  const lines = log.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = lines.find((l) => l.startsWith('smolcluster: error:'))?.replace(/^smolcluster: error: /, '');
  return error ?? lines.at(-1) ?? `the run recorded no step (exit ${exitCode ?? 'killed'})`;
}

export function readEvents(file: string): EventLine[] {
  return jsonLines(file) as EventLine[];
}

/** Whether metrics.jsonl holds a step record stamped at or after `since` (epoch ms). */
export function stepsRecordedSince(file: string, since: number): boolean {
  return jsonLines(file).some((l) => typeof (l as { step?: unknown }).step === 'number' && ((l as { time?: number }).time ?? 0) >= since);
}

function jsonLines(file: string): unknown[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').flatMap((line) => {
    try {
      return line.trim() ? [JSON.parse(line) as unknown] : [];
    } catch {
      return [];
    }
  });
}
