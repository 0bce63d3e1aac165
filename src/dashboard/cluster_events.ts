/**
 * A coordinator's events (src/cluster: coordinator.ts, scheduler.ts) in words for the dashboard's
 * event log, rather than their JSON: what a reader of the original system's console would see.
 */
import type { EventRecord } from '../metrics/events.js';

export interface ClusterEventText {
  text: string;
  level: 'info' | 'warn' | 'error';
}

const num = (v: unknown, digits = 4): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '?');
const ms = (v: unknown): string => (typeof v === 'number' ? `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms` : '? ms');

/** The line for one of a coordinator's events, or null when `e` is not one. */
export function describeClusterEvent(e: EventRecord): ClusterEventText | null {
  const f = (k: string): string => String(e[k] ?? '?');
  const task = (): string => `job ${f('job')} round ${f('round')} task ${f('task')}`;
  const info = (text: string): ClusterEventText => ({ text, level: 'info' });
  const warn = (text: string): ClusterEventText => ({ text, level: 'warn' });
  switch (e.kind) {
    case 'coordinator_started':
      return info(`coordinator started on port ${f('port')} (${f('policy')} scheduling${e.nodes_file ? `, nodes from ${f('nodes_file')}` : ''})`);
    case 'node_joined':
      return info(`node ${f('node')} joined (${f('how')})`);
    case 'node_device':
      return info(`node ${f('node')} trains on ${f('device')}`);
    case 'node_state':
      return info(`node ${f('node')} ${f('state')}${Number(e.in_flight) > 0 ? ` (${f('in_flight')} task${e.in_flight === 1 ? '' : 's'} in flight)` : ''}`);
    case 'node_dead':
      return { text: `node ${f('node')} dead: ${f('reason')}${Number(e.tasks_requeued) > 0 ? `; ${f('tasks_requeued')} task(s) requeued` : ''}`, level: 'error' };
    case 'node_unreachable':
      return warn(`node ${f('node')} unreachable: ${f('error')}`);
    case 'nodes_file_error':
      return warn(`nodes file ${f('file')}: ${f('error')}`);
    case 'peer_refused':
      return warn(`refused ${f('peer')}: ${f('reason')}`);
    case 'job_queued':
      return info(`job ${f('job')} queued from ${f('client')}: ${f('rounds')} rounds × ${f('epochs')} epochs over ${f('shards')} shards${Number(e.ahead) > 0 ? ` (${f('ahead')} ahead)` : ''}`);
    case 'job_started':
      return info(`job ${f('job')} started (${f('policy')})`);
    case 'job_done':
      return info(`job ${f('job')} done: validation error ${num(e.validation_error)} in ${ms(e.ms)}`);
    case 'job_failed':
      return { text: `job ${f('job')} failed: ${f('error')}`, level: 'error' };
    case 'job_cancelled':
      return warn(`job ${f('job')} cancelled: ${f('reason')}`);
    case 'round':
      return info(`job ${f('job')} round ${f('round')}: validation error ${num(e.validation_error)}, training error ${num(e.train_error)} (${ms(e.ms)})`);
    case 'task_assigned':
      return info(`${task()} → ${f('node')}${Number(e.attempt) > 1 ? ` (attempt ${f('attempt')})` : ''}: ${f('why')}`);
    case 'task_done':
      return info(`${task()} done on ${f('node')} (${f('device')}) in ${ms(e.ms)}, training error ${num(e.train_error)}`);
    case 'task_rejected':
      return warn(`${task()} rejected by ${f('node')}: ${f('reason')}`);
    case 'task_requeued':
      return warn(`${task()} requeued from ${f('node')}: ${f('why')}`);
    case 'task_retry':
      return warn(`${task()} retried in ${ms(e.delay_ms)} (attempt ${f('attempt')}, after ${f('after')})`);
    case 'task_timeout':
      return warn(`${task()} timed out on ${f('node')} after ${ms(e.waited_ms)}`);
    case 'task_result_ignored':
      return warn(`${task()} result from ${f('node')} ignored: ${f('why')}`);
    default:
      return null;
  }
}
