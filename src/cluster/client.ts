/**
 * The client side of a job: reads nothing itself (the caller loads the data), submits the job to the
 * coordinator over an authenticated connection, reports its progress, and resolves with the job's
 * result — or rejects with the coordinator's reason, a lost connection, or its own deadline.
 */
import { MessageType } from '../comm/wire/frame.js';
import { PeerError, TimeoutError } from '../util/errors.js';
import type { JobResult } from './job.js';
import { dialCluster, onFrames, sendFrame } from './link.js';
import { decodeJobUpdate, encodeJob, type JobSpec, type JobUpdate } from './messages.js';
import { JobFailedError } from './scheduler.js';

export interface SubmitOptions {
  host: string;
  port: number;
  token: string;
  spec: JobSpec;
  /** Dial + handshake deadline. */
  connectTimeoutMs: number;
  /** The whole job's deadline (queueing included). */
  timeoutMs: number;
  onUpdate?: (u: JobUpdate) => void;
}

export async function submitJob(o: SubmitOptions): Promise<JobResult> {
  const where = `${o.host}:${o.port}`;
  const conn = await dialCluster(o.host, o.port, 'the coordinator', o.token, o.connectTimeoutMs);
  let last = 'none yet';
  return new Promise<JobResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new TimeoutError('job', [], o.timeoutMs, `no result from the coordinator at ${where}; last update: ${last}`));
    }, o.timeoutMs);
    const settle = (err: Error | null, result?: JobResult): void => {
      clearTimeout(timer);
      conn.off('closed', onClosed);
      conn.bye(-1);
      if (err) reject(err);
      else resolve(result!);
    };
    const onClosed = (err: Error | null): void => {
      clearTimeout(timer);
      reject(new PeerError(-1, where, `the coordinator closed the connection before the job ended${err ? ` (${err.message})` : ''}; last update: ${last}`));
    };
    conn.on('closed', onClosed);
    onFrames(conn, (type, payload) => {
      if (type !== MessageType.JobUpdate) return;
      const u = decodeJobUpdate(payload);
      last = u.state === 'round' ? `round ${u.round}` : u.state;
      o.onUpdate?.(u);
      if (u.state === 'done') settle(null, u.result as unknown as JobResult);
      else if (u.state === 'failed') settle(new JobFailedError(`job ${u.job} failed on the coordinator at ${where}: ${u.message}`));
    });
    sendFrame(conn, MessageType.JobSubmit, encodeJob(o.spec));
  });
}
