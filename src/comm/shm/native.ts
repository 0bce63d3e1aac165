/**
 * The shared-memory half of the native addon (src/native/shm.cc): POSIX shm segments as
 * ArrayBuffers and a futex on an int32 word of them. Null when the addon is missing or was built
 * without it (not Linux): the transport then stays on TCP. comm does not load the addon (its
 * loader lives with the tensor engine's native backend): the caller hands its exports in
 * (launch/shm_native.ts), as it hands the process group its reducer.
 */

export interface ShmNative {
  /** A new zero-filled segment; fails if the name exists. Names are "/" + up to 200 characters without "/". */
  shmCreate(name: string, bytes: number): ArrayBuffer;
  /** Maps an existing segment of at least `bytes`. */
  shmOpen(name: string, bytes: number): ArrayBuffer;
  /** Removes the name (mappings stay valid); true if it existed. */
  shmUnlink(name: string): boolean;
  /** Wakes every process waiting on flags[index]. */
  futexWake(flags: Int32Array, index: number): void;
  /** Waits off the event loop until flags[index] !== expected (true) or timeoutMs passed (false). */
  futexWait(flags: Int32Array, index: number, expected: number, timeoutMs: number): Promise<boolean>;
  /**
   * Sleeps on the futex on the calling thread (blocking it) until flags[index] !== expected or a
   * wake came (true) or timeoutUs passed (false). Keep timeoutUs short.
   */
  futexWaitSync(flags: Int32Array, index: number, expected: number, timeoutUs: number): boolean;
  /**
   * Looks at flags[index] on the calling thread, offering the core between looks, until it is no
   * longer `expected` (true) or spinUs passed (false). Never sleeps.
   */
  spinWait(flags: Int32Array, index: number, expected: number, spinUs: number): boolean;
}

const NAMES = ['shmCreate', 'shmOpen', 'shmUnlink', 'futexWake', 'futexWait', 'futexWaitSync', 'spinWait'] as const;

/** The addon's shared-memory functions, when `addon` (its exports, null when not loaded) has them all. */
export function shmFrom(addon: Readonly<Record<string, unknown>> | null): ShmNative | null {
  if (!addon || !NAMES.every((n) => typeof addon[n] === 'function')) return null;
  return addon as unknown as ShmNative;
}
