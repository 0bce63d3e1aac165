/**
 * Elastic membership (DESIGN.md "Elastic membership"): the workers of a run form a sequence of
 * membership epochs, each with its own process group. A collective belongs to one epoch; when a
 * member dies or hangs past the deadline, or a worker asks to join, the epoch ends and the next is
 * agreed through the rendezvous store:
 *
 *   1. every candidate opens a fresh data listener and announces `smolcluster/rank/<id>/el/alive/<e>` =
 *      {address, committed step} (a worker's id is the rank it holds in the store: stable);
 *   2. it waits for every member of the previous epoch and every registered joiner to announce,
 *      at most `settleMs` — a dead or stopped worker never does;
 *   3. the first compareSet of `smolcluster/shared/el/members/<e>` decides: the announced ids, survivors first in
 *      their old order, then joiners. Whoever is not in the decision (it announced too late) joins
 *      the following epoch instead;
 *   4. the members build a full mesh among themselves (rank = place in the decision) whose
 *      handshake signature carries the epoch, so no connection of another epoch is accepted.
 *
 * A worker that wants in (new, restarted, or excluded after a stall) registers under
 * `smolcluster/shared/el/joins/<e>` for the epoch after the current one; the current members notice (pendingJoins)
 * and end their epoch at the next step boundary. This file knows sockets and the store; the
 * training strategy above it sees only "here is the new group".
 */
import { SmolError, TimeoutError } from '../util/errors.js';
import { ProcessGroup, type ProcessGroupOptions } from './process_group.js';
import type { StoreClient } from './store/client.js';
import { rankKey, sharedKey } from './store/keys.js';
import { StoreTimeoutError } from './store/protocol.js';
import type { ConnectionOptions } from './tcp/connection.js';
import { MeshListener } from './tcp/mesh.js';
import type { TcpTransport } from './tcp/transport.js';

export interface ElasticOptions {
  /** This worker's stable id: its rank in the store, 0 ≤ id < maxWorkers. */
  id: number;
  /** Ids a run may have (the launch world size). */
  maxWorkers: number;
  /** Fewer members than this ends the run. */
  minWorkers: number;
  token: string;
  signature: string;
  /** Address the data listener binds and advertises. */
  listenHost: string;
  advertiseHost?: string;
  /** How long candidates wait for the previous members to announce before deciding without them (ms). */
  settleMs: number;
  /** Deadline of the first formation, of building a mesh, and of waiting to be let in (ms). */
  timeoutMs: number;
  group?: ProcessGroupOptions;
  connection?: ConnectionOptions;
}

/** One membership epoch as its members see it. */
export interface Membership {
  epoch: number;
  /** Worker ids; a member's rank in `group` is its place here. */
  members: number[];
  /** Ids that were not members of the previous epoch. */
  joined: number[];
  /** Members of the previous epoch missing from this one. */
  left: number[];
  /** The smallest step committed by a member that was in the previous epoch (-1: none; a first formation). */
  committed: number;
  /** The group rank whose state every member takes: the first member that held state (not a newcomer). */
  source: number;
  group: ProcessGroup;
}

/** The run stops: fewer than --min-workers remain. */
export class BelowMinimumError extends SmolError {
  constructor(members: number[], min: number, epoch: number) {
    super('BELOW_MIN_WORKERS', `only ${members.length} worker${members.length === 1 ? '' : 's'} left (id${members.length === 1 ? '' : 's'} ${members.join(', ') || 'none'}) in membership epoch ${epoch}, below --min-workers ${min}: stopping`);
  }
}

/** The run ended while this worker waited to join. */
export class RunOverError extends SmolError {
  constructor() {
    super('RUN_OVER', 'the run finished before this worker could join');
  }
}

interface Announcement {
  address: string;
  /** Last committed step (-1: a joiner with no state). */
  step: number;
}

/** Set when an elastic run has finished (a standalone store then ends once its clients have left). */
export const RUN_DONE_KEY = sharedKey('el/done');

/** Store keys: a worker's announcement is its own; the rest is shared (store/keys.ts). */
const K = {
  latest: sharedKey('el/latest'),
  done: RUN_DONE_KEY,
  members: (e: number) => sharedKey(`el/members/${e}`),
  alive: (e: number, id: number) => rankKey(id, `el/alive/${e}`),
  joins: (e: number) => sharedKey(`el/joins/${e}`),
  joiner: (e: number, k: number) => sharedKey(`el/joiner/${e}/${k}`),
};

export class ElasticGroup {
  private current: Membership | null = null;
  private transport: TcpTransport | null = null;
  private joinPoll: Promise<void> | null = null;
  private joinsSeen = 0;

  constructor(private readonly store: StoreClient, private readonly o: ElasticOptions) {}

  get membership(): Membership {
    if (!this.current) throw new SmolError('NOT_FORMED', 'elastic group used before it was formed');
    return this.current;
  }

  /**
   * The first epoch this process is in: the initial formation (every id expected, the start-up
   * deadline to arrive), or — when the run is already going — joining at the next epoch.
   */
  async start(): Promise<Membership> {
    const latest = await this.counter(K.latest);
    if (latest === 0) {
      const m = await this.attempt(1, [...Array(this.o.maxWorkers).keys()], -1, this.o.timeoutMs);
      if (m) return m;
    }
    return this.join();
  }

  /** Ends the current epoch (its transport is dropped at once) and forms the next with whoever announces. */
  async reform(committedStep: number): Promise<Membership> {
    const prev = this.membership;
    this.transport?.abort();
    this.transport = null;
    // A member of the decision that never connects (it died meanwhile) fails the mesh for all:
    // everyone moves on to the next epoch, where it will not announce.
    for (let e = prev.epoch + 1; e <= prev.epoch + 2 * this.o.maxWorkers + 2; e++) {
      try {
        return (await this.attempt(e, prev.members, committedStep, this.o.settleMs)) ?? (await this.join());
      } catch (err) {
        if (err instanceof BelowMinimumError || err instanceof RunOverError || !(err instanceof SmolError)) throw err;
      }
    }
    throw new SmolError('ELASTIC', `no membership epoch after ${prev.epoch} could be formed`);
  }

  /**
   * How many workers wait to join the next epoch, as last read from the store. Reads in the
   * background (one request in flight), so a step never waits on the store.
   */
  pendingJoins(): number {
    const e = this.current?.epoch;
    if (e !== undefined && !this.joinPoll) {
      this.joinPoll = this.counter(K.joins(e + 1)).then(
        (n) => {
          if (this.current?.epoch === e) this.joinsSeen = n;
        },
        () => {},
      ).finally(() => {
        this.joinPoll = null;
      });
    }
    return this.joinsSeen;
  }

  /** The run is over: workers still waiting to join are told so. */
  async finish(): Promise<void> {
    await this.store.set(K.done, '1').catch(() => {});
  }

  async close(): Promise<void> {
    await this.transport?.close();
    this.transport = null;
  }

  /** Registers for the epoch after the latest decided one and waits to be let in. */
  private async join(): Promise<Membership> {
    const start = Date.now();
    for (;;) {
      if ((await this.counter(K.done)) > 0) throw new RunOverError();
      const e = (await this.counter(K.latest)) + 1;
      const k = await this.store.add(K.joins(e), 1);
      await this.store.set(K.joiner(e, k), String(this.o.id));
      const m = await this.attempt(e, [], -1, this.o.timeoutMs, () => this.runOver()).catch((err: unknown) => {
        if (err instanceof BelowMinimumError || err instanceof RunOverError) throw err;
        return null;
      });
      if (m) return m;
      if (Date.now() - start > this.o.timeoutMs * 4) throw new TimeoutError('elastic join', [], Date.now() - start, 'never let into a membership epoch');
    }
  }

  private async runOver(): Promise<boolean> {
    return (await this.counter(K.done)) > 0;
  }

  /**
   * Announces for epoch `e`, waits for `expected` (and registered joiners) up to `settleMs`, takes
   * part in the decision and, if a member, builds the epoch's mesh. Null: not in the decision.
   */
  private async attempt(e: number, expected: number[], step: number, settleMs: number, abandon?: () => Promise<boolean>): Promise<Membership | null> {
    // Listening before the decision (the address goes into the announcement); connections that
    // arrive before we know our rank and the world wait until configure().
    const mesh = await MeshListener.open(null, this.o.listenHost, 0);
    try {
      const address = `${this.o.advertiseHost ?? this.o.listenHost}:${mesh.port}`;
      const mine: Announcement = { address, step };
      await this.store.set(K.alive(e, this.o.id), JSON.stringify(mine));
      const decided = await this.decide(e, expected, settleMs, abandon);
      const at = decided.indexOf(this.o.id);
      if (at < 0) return null;
      const notes = await Promise.all(decided.map(async (id) => JSON.parse(Buffer.from(await this.store.get(K.alive(e, id), this.o.timeoutMs)).toString('utf8')) as Announcement));
      await this.raiseLatest(e);
      if (decided.length < this.o.minWorkers) throw new BelowMinimumError(decided, this.o.minWorkers, e);
      mesh.configure(this.meshConfig(at, decided.length, e));
      const transport = await mesh.connect(notes.map((n) => n.address));
      const previous = this.current?.members ?? expected;
      const survivors = notes.filter((n) => n.step >= 0).map((n) => n.step);
      const membership: Membership = {
        epoch: e, members: decided,
        joined: decided.filter((id, i) => !previous.includes(id) || (this.current !== null && notes[i].step < 0)),
        left: this.current ? previous.filter((id) => !decided.includes(id)) : [],
        committed: survivors.length > 0 ? Math.min(...survivors) : -1,
        source: Math.max(0, notes.findIndex((n) => n.step >= 0)),
        group: new ProcessGroup(transport, this.o.group),
      };
      this.transport = transport;
      this.current = membership;
      this.joinsSeen = 0;
      return membership;
    } finally {
      mesh.close();
    }
  }

  /** The decided member list of epoch `e`: ours if our compareSet came first, else the winner's. */
  private async decide(e: number, expected: number[], settleMs: number, abandon?: () => Promise<boolean>): Promise<number[]> {
    if (expected.length === 0) {
      // A joiner proposes nothing: it waits for the members' decision (polling for the run's end).
      for (const start = Date.now(); ;) {
        try {
          return parseMembers(await this.store.get(K.members(e), 1000));
        } catch (err) {
          if (!(err instanceof StoreTimeoutError)) throw err;
          if (await abandon?.()) throw new RunOverError();
          if (Date.now() - start > this.o.timeoutMs) throw new TimeoutError('elastic join', [], Date.now() - start, `epoch ${e} was never decided`);
        }
      }
    }
    const joiners = await this.joiners(e);
    const wanted = [...new Set([...expected, ...joiners])];
    let present = wanted;
    try {
      await this.store.wait(wanted.map((id) => K.alive(e, id)), settleMs);
    } catch (err) {
      if (!(err instanceof StoreTimeoutError)) throw err;
      const missing = new Set(err.missing);
      present = wanted.filter((id) => !missing.has(K.alive(e, id)));
    }
    const proposal = [...expected.filter((id) => present.includes(id)), ...joiners.filter((id) => present.includes(id) && !expected.includes(id))];
    return parseMembers(await this.store.compareSet(K.members(e), null, JSON.stringify(proposal)));
  }

  private async joiners(e: number): Promise<number[]> {
    const n = await this.counter(K.joins(e));
    const ids = await Promise.all(Array.from({ length: n }, (_, k) => this.store.get(K.joiner(e, k + 1), this.o.settleMs).then(
      (v) => Number(Buffer.from(v).toString('utf8')),
      () => -1,
    )));
    return ids.filter((id) => Number.isInteger(id) && id >= 0 && id < this.o.maxWorkers);
  }

  /** A store counter's value (0 when never set), without waiting. */
  private counter(key: string): Promise<number> {
    return this.store.add(key, 0);
  }

  private async raiseLatest(e: number): Promise<void> {
    for (;;) {
      const cur = await this.counter(K.latest);
      if (cur >= e) return;
      const after = Number(Buffer.from(await this.store.compareSet(K.latest, String(cur), String(e))).toString('utf8'));
      if (after >= e) return;
    }
  }

  private meshConfig(rank: number, size: number, epoch: number) {
    return {
      rank, size, token: this.o.token, signature: `${this.o.signature} epoch ${epoch}`, timeoutMs: this.o.timeoutMs,
      opTimeoutMs: this.o.group?.timeoutMs, connection: this.o.connection,
    };
  }
}

function parseMembers(v: Uint8Array): number[] {
  const members = JSON.parse(Buffer.from(v).toString('utf8')) as unknown;
  if (!Array.isArray(members) || !members.every((x) => Number.isInteger(x))) throw new SmolError('PROTOCOL', 'malformed membership in the store');
  return members as number[];
}
