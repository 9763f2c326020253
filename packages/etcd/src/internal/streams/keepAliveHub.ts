/**
 * Keeps leases alive over one shared LeaseKeepAlive stream per client.
 *
 * Each lease is refreshed a third of its TTL after its last acknowledgement (or at the
 * interval its holder asked for); the first refresh comes one such period after the lease
 * is registered, since its holder has just granted or refreshed it. A lease is lost, and
 * its holders told at once, when the server answers TTL <= 0, or when its TTL has passed since the keepalive the last
 * acknowledgement answered was sent: the server may have expired it by then. A broken
 * stream is reopened with backoff; the watchdog keeps running meanwhile. When the last
 * lease goes, the stream stays open for a while, so that leases taken one after another
 * (a lock per job, say) do not open a stream each.
 *
 * Cost per lease: no timer and no fiber. The leases wait in one schedule ("look at this
 * lease at time T", in a bucket per 100 ms tick), and one ticker takes what is due every
 * 100 ms, so a tick with nothing due costs a map lookup, whatever the number of leases,
 * and the keepalives due in one tick are written together, straight from the leases' IDs
 * into one buffer, in one write. Answers are handled in the stream's data callback,
 * without an Effect and without an allocation per answer: an answer is read only as far
 * as its ID and TTL (its header's four uint64s would cost four int64-to-text conversions
 * each), and it is matched with the oldest keepalive in flight, since the server answers
 * in order (a lookup by ID only when it does not). A stream counts as stalled only when a keepalive
 * waited past its stall bound and nothing at all was heard on the stream meanwhile: ten
 * thousand answers queued behind one another on a busy process are progress, not a stall.
 *
 * The stream is not grpc-js's: it is spoken over `node:http2` (`http2Duplex.ts`, through
 * `Transport.framedDuplex`: the same member, token, TLS settings and `hasleader` header).
 * A keepalive is one request and one answer a lease every TTL/3, 5 000/s for 10 000 leases
 * of 6 s; grpc-js's own path cost about 30 µs of CPU per round trip (15 % of a core at that
 * rate, whatever the codec); this stream costs about 5 µs a keepalive, the process's CPU all
 * told (`pnpm probe:keepalive` in packages/bench), most of it Node's own work per DATA frame:
 * etcd sends each answer in a frame of its own. A stream that fails with
 * an invalid token takes a fresh one before it is opened again; any other failure moves
 * it to the next member.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import * as EtcdError from "../../EtcdError.js"
import * as Metrics from "../base/metrics.js"
import type { Transport } from "../transport/transport.js"
import {
  type Answer,
  idLength,
  idVarint,
  readAnswer,
  requestLength,
  setIdParts,
  writeRequest
} from "../wire/keepAliveCodec.js"
import { methods } from "../wire/proto/loader.js"
import { runStream, StreamSession } from "./streamSession.js"

/** A registration of one holder of one lease. */
export interface KeepAlive {
  /** Fails with LeaseLost once the lease is lost; never succeeds. */
  readonly lost: Deferred.Deferred<never, EtcdError.LeaseLost>
  /** The TTL the server last reported, in seconds. */
  readonly ttl: () => number
  /**
   * Has `listener` called, in the hub's own code and with no fiber waiting, when the hub
   * loses the lease (a keepalive timeout, or the server saying it expired); not when its
   * holder revokes it. One listener per registration; it is dropped with it.
   */
  readonly onLost: (listener: (error: EtcdError.LeaseLost) => void) => void
}

/** The shared keepalive stream of one client. */
export interface KeepAliveHub {
  /**
   * Keeps `id` alive until `scope` closes. `ttlSeconds` is the TTL the server just
   * granted or refreshed it with; `interval` overrides the TTL/3 refresh period. The scope
   * is an argument, not a service: providing one costs more Effect steps than the rest.
   */
  readonly keepAlive: (
    id: bigint,
    ttlSeconds: number,
    interval: Duration.Duration | undefined,
    scope: Scope.Scope
  ) => Effect.Effect<KeepAlive>
}

const keepAlivePath = methods.lease.keepAlive.path

/**
 * Where a lease is in its cycle. Its times (`nextSend`, `sentAt`, `deadline`) stay fields of
 * the entry, so that a keepalive and its answer move it without allocating.
 */
type LeaseState =
  /** Kept alive: its next keepalive goes at `nextSend`. */
  | "waiting"
  /** Its keepalive, sent at `sentAt` on the current stream, is not answered yet. */
  | "inFlight"
  /** Lost or released: whatever the schedule or the stream still holds of it is ignored. */
  | "gone"

interface Entry {
  readonly id: bigint
  /** The ID's varint bytes as latin1 text: the key of `entries`. */
  readonly key: string
  /** The ID as `setIdParts` gives it, to match an answer with the keepalive it answers. */
  id0: number
  id1: number
  id2: number
  readonly interval: number | undefined
  readonly lost: Deferred.Deferred<never, EtcdError.LeaseLost>
  /** What the registrations want called when the lease is lost. */
  readonly listeners: Set<(error: EtcdError.LeaseLost) => void>
  holders: number
  ttlMs: number
  /** When the server may expire the lease if no further keepalive is acknowledged. */
  deadline: number
  /** When to send the next keepalive (while "waiting"). */
  nextSend: number
  /** When the keepalive in flight was sent (while "inFlight"). */
  sentAt: number
  state: LeaseState
  /** The schedule's slot the entry waits in (-1 when none): its items in other slots are stale. */
  slot: number
}

/**
 * One LeaseKeepAlive stream's state. It is `healthy` once open: a keepalive stream needs
 * no create to be accepted before it is of use. It is `broken` once it failed or a
 * keepalive went unanswered too long (see `check`): nothing more is sent on it, but an
 * answer that still comes is handled, since it is the server's word on its lease.
 */
class Session extends StreamSession {
  override healthy = true
  /** The keepalives of this turn of the event loop, written together by `flush`. */
  readonly outgoing: Array<Entry> = []
  /**
   * The leases whose keepalives are in flight on this stream, in the order they were sent,
   * from `inFlightHead` on: the server answers them in that order (it reads the stream's
   * requests one at a time), so an answer is its lease's at the head, found without a
   * lookup. An answer that is not the head's is looked up by its key, and the order is
   * started over.
   */
  readonly inFlight: Array<Entry | undefined> = []
  inFlightHead = 0
  constructor(
    /** When the stream last delivered an answer (or opened). */
    public lastHeard: number
  ) {
    super()
  }
}

const tickMillis = 100

/**
 * The wait before opening a stream again: 100 ms after the first failure, doubling up to
 * 1 s. Shorter than the watch hub's (2 s): the leases' TTLs run on meanwhile, and a
 * stall bound is 1 s at least. Not jittered, as it was written; whether jitter would
 * spread the reconnects of many clients usefully here is unmeasured.
 */
const backoff = (failures: number): Duration.Duration =>
  Duration.millis(Math.min(1_000, 50 * 2 ** Math.min(failures, 5)))

/** How long the stream stays open once no lease is left. */
const lingerMillis = 10_000

/**
 * How long a keepalive may wait for its answer, with nothing heard on the stream, before
 * the stream counts as stalled (a member paused or cut off without the connection
 * breaking) and is reopened on another member, well before the lease's TTL runs out.
 */
const stallMillis = (entry: Entry): number => Math.max(1_000, entry.ttlMs / 4)
/** How long after an acknowledgement (or a registration) the next keepalive goes. */
const refreshMillis = (interval: number | undefined, ttlMs: number): number =>
  interval ?? Math.max(tickMillis, Math.floor(ttlMs / 3))

/**
 * The entries by the tick at which to look at them: a bucket per tick (`tickMillis`) that
 * has something due, so that adding an entry and taking one are constant time whatever the
 * number of leases (a binary heap of twenty thousand items, two per lease, cost a sift of
 * some fifteen levels each way per keepalive). An entry is taken at the first tick at or
 * after its time; the ticker fires once a tick anyway, so nothing is later than it would
 * be otherwise. An entry waits in one slot (`Entry.slot`): when it moves, what an older
 * bucket still holds of it is skipped, so a move allocates nothing.
 */
class Schedule {
  private readonly buckets = new Map<number, Array<Entry>>()
  /** The last slot taken: an item is never put before the next one. */
  private taken = -1
  private count = 0
  // Stryker disable next-line BlockStatement: equivalent because the hub never reads `size` (nor `count`, which only it returns)
  get size(): number {
    return this.count
  }
  /** Looks at `entry` at `at` (and no longer when it was to be looked at before). */
  push(entry: Entry, at: number): void {
    // Stryker disable next-line MethodExpression: equivalent because an entry looked at too early is only pushed again (`check` sends, loses or stalls nothing before its time)
    const slot = Math.max(Math.ceil(at / tickMillis), this.taken + 1)
    // Stryker disable next-line ConditionalExpression: equivalent because a second item of an entry in one slot is skipped when taken (the entry's slot is -1 or a later one by then)
    if (entry.slot === slot) return
    entry.slot = slot
    const bucket = this.buckets.get(slot)
    if (bucket === undefined) this.buckets.set(slot, [entry])
    else bucket.push(entry)
    // Stryker disable next-line UpdateOperator: equivalent because `count` is read only by `size`, which the hub does not read
    this.count++
  }
  /** The slots up to `last` that hold something, in no order. */
  private held(last: number): Array<number> {
    // Stryker disable next-line ConditionalExpression,MethodExpression: equivalent because a slot not due yet, taken, only has `check` look early at its entries, which finds nothing due and pushes them back to it
    return Array.from(this.buckets.keys()).filter((slot) => slot <= last)
  }
  /**
   * Calls `f` with every entry due at `now`, in slot order. What `f` pushes is due later than
   * `now` (the hub only ever looks at a lease again in the future), so in a later slot.
   */
  takeDue(now: number, f: (entry: Entry) => void): void {
    // never before the last slot taken: the hub's clock is monotonic (and a second tick in
    // the same slot finds no slot to take)
    const last = Math.floor(now / tickMillis)
    // usually a slot or two since the last tick; after a long gap (the first tick, a
    // process suspended a while) the slots that hold something, not every slot between
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: equivalent because both lists give the due slots that hold something, in order (empty ones are skipped below): the choice is for speed
    const slots = last - this.taken <= this.buckets.size + 2
      ? Array.from({ length: last - this.taken }, (_, i) => this.taken + 1 + i)
      : this.held(last).sort((a, b) => a - b)
    this.taken = last
    for (const slot of slots) {
      const bucket = this.buckets.get(slot)
      if (bucket === undefined) continue
      this.buckets.delete(slot)
      // Stryker disable next-line AssignmentOperator: equivalent because `count` is read only by `size`, which the hub does not read
      this.count -= bucket.length
      for (let i = 0; i < bucket.length; i++) {
        const entry = bucket[i]
        // Stryker disable next-line ConditionalExpression: equivalent because a stale item only has `check` look early, which finds nothing due and pushes the entry back to the slot it was in
        if (entry.slot !== slot) continue
        // Stryker disable next-line UnaryOperator: equivalent because `f` always pushes the entry to a later slot than the one taken (>= 1), and slot 1 is never pushed twice
        entry.slot = -1
        f(entry)
      }
    }
  }
  // Stryker disable next-line BlockStatement: equivalent because the items left are of gone entries, which `takeDue`'s caller skips (and `count` is not read)
  clear(): void {
    this.buckets.clear()
    this.count = 0
  }
}

/** Starts the hub; the stream is open while some lease is kept alive. */
export const make = (transport: Transport): Effect.Effect<KeepAliveHub, never, Scope.Scope> =>
  Effect.gen(function*() {
    const hubScope = yield* Effect.scope
    /**
     * The hub's clock: milliseconds since just before the hub started, on a monotonic clock (`performance.now()`, as Node's timers): a wall
     * clock set back (NTP, a VM restored) would hold every keepalive back by as much, and one
     * set forward would lose every lease at once, while the server's TTLs run on regardless.
     * Whole milliseconds below 2^30 (twelve days) V8 can keep in the entries' fields as small
     * integers (an optimisation, unmeasured; past twelve days they are heap numbers again,
     * which is only the cost this avoids, not an error).
     */
    const epoch = Math.floor(performance.now()) - 1
    const clock = (): number => Math.floor(performance.now()) - epoch
    const entries = new Map<string, Entry>()
    const schedule = new Schedule()
    let session: Session | undefined
    let runner: Fiber.RuntimeFiber<void> | undefined
    /**
     * When the stream may be let go, the last lease having gone `lingerMillis` before (Infinity
     * while some lease is kept alive, and once the runner was told): see `tick`.
     */
    let lingerUntil = Infinity

    /** Looks at `entry` again at `at` (and not when it was to be looked at before). */
    const reschedule = (entry: Entry, at: number): void => schedule.push(entry, at)
    /**
     * Looks at a waiting entry again when its next keepalive is due, or at its deadline if
     * that comes first (an answer that came late, an interval longer than the TTL): a lease
     * is lost at its deadline, not at the keepalive that would have come after it.
     */
    const awaitNext = (entry: Entry): void => reschedule(entry, Math.min(entry.deadline, entry.nextSend))

    const forgetEntry = (entry: Entry): void => {
      // Stryker disable next-line all: metrics only, what the leases do does not depend on it (Metrics.test checks it)
      if (metered && entry.state !== "gone") Metrics.leaseHeld(-1)
      entry.state = "gone"
      // only a lease kept alive is released or lost: the entry is its key's
      entries.delete(entry.key)
      if (entries.size === 0) {
        schedule.clear()
        // the ticker tells the stream once the linger time is over: a lease that comes and
        // goes (a lock on a lease of its own) wakes no fiber
        lingerUntil = clock() + lingerMillis
      }
    }

    const lose = (entry: Entry, reason: EtcdError.LeaseLost["reason"]): void => {
      // Stryker disable next-line all: metrics only, what the leases do does not depend on it (Metrics.test checks it)
      if (metered) Metrics.leaseLost(reason)
      forgetEntry(entry)
      const error = new EtcdError.LeaseLost({ leaseId: entry.id, reason })
      Deferred.unsafeDone(entry.lost, Exit.fail(error))
      for (const listener of entry.listeners) listener(error)
      entry.listeners.clear()
    }

    /** Queues the entry's keepalive for the next `flush`. */
    const send = (current: Session, entry: Entry, now: number): void => {
      entry.state = "inFlight"
      entry.sentAt = now
      current.outgoing.push(entry)
      current.inFlight.push(entry)
      // Stryker disable next-line ArithmeticOperator: equivalent because a look too early finds nothing due and pushes the entry to its stall bound again (line below), the same tick as without
      reschedule(entry, Math.min(entry.deadline, now + stallMillis(entry)))
    }

    /** Writes the keepalives queued, in one write (one DATA frame or a few, not one each). */
    const flush = (current: Session): void => {
      const outgoing = current.outgoing
      if (outgoing.length === 0) return
      let length = 0
      for (let i = 0; i < outgoing.length; i++) length += requestLength(idLength(outgoing[i]))
      const bytes = Buffer.allocUnsafe(length)
      let offset = 0
      for (let i = 0; i < outgoing.length; i++) offset = writeRequest(bytes, offset, outgoing[i])
      outgoing.length = 0
      current.write(bytes)
    }

    /** What is due for one lease: lose it, call the stream stalled, send, or look again later. */
    const check = (entry: Entry, now: number): void => {
      if (now >= entry.deadline) return lose(entry, "keepalive-timeout")
      const current = session
      if (current === undefined || current.broken !== undefined) {
        // a new stream sends whatever is due as soon as it opens
        return reschedule(entry, entry.deadline)
      }
      if (entry.state === "inFlight") {
        const stall = stallMillis(entry)
        // an entry in flight is looked at no sooner than its stall bound after it was sent: this
        // guards against a look too early
        // Stryker disable next-line ConditionalExpression,ArithmeticOperator: equivalent because it holds whenever it is tested (above)
        const waited = now - entry.sentAt >= stall
        if (waited && now - current.lastHeard >= stall) {
          current.break(
            // Stryker disable next-line ObjectLiteral: equivalent because the runner reads only the error's tag (it reports the member, the error goes nowhere)
            new EtcdError.EtcdUnavailable({
              method: keepAlivePath,
              // Stryker disable next-line ConditionalExpression,EqualityOperator,ArrayDeclaration: equivalent because the runner reads only the error's tag
              endpoints: current.duplex === undefined ? [] : [current.duplex.endpoint.url],
              // Stryker disable next-line StringLiteral: equivalent because the runner reads only the error's tag
              reason: "keepalives unanswered"
            })
          )
          return reschedule(entry, entry.deadline)
        }
        // Stryker disable next-line ArithmeticOperator,MethodExpression: equivalent because a look too early finds nothing due and pushes the entry again, until the same tick as without
        return reschedule(entry, Math.min(entry.deadline, Math.max(entry.sentAt, current.lastHeard) + stall))
      }
      // a waiting entry is looked at no sooner than its next keepalive is due (or its deadline,
      // which loses it above): this guards against a look too early
      // Stryker disable next-line ConditionalExpression: equivalent because it holds whenever it is tested (above)
      if (now >= entry.nextSend) return send(current, entry, now)
      awaitNext(entry)
    }

    /** Sends what is due and loses what is overdue. */
    const tick = (): void => {
      const now = clock()
      schedule.takeDue(now, (entry) => {
        if (entry.state !== "gone") check(entry, now)
      })
      if (now >= lingerUntil) {
        lingerUntil = Infinity
        session?.wakeRunner()
      }
      if (session !== undefined) flush(session)
    }

    /**
     * The ticker, for as long as the runner runs: a Node timer, not a fiber, so that a
     * process busy with thousands of other fibers (grants, say) still sends its keepalives
     * on time; and each tick runs after the sockets were read (`setImmediate`, after the
     * poll phase), since Node runs due timers first: answers that came in while the
     * process was busy are counted before anything is judged overdue.
     */
    const ticker = Effect.acquireRelease(
      Effect.sync(() => setInterval(() => setImmediate(tick), tickMillis)),
      (timer) => Effect.sync(() => clearInterval(timer))
    )

    /** The lease `answer` answers: the in-flight head's, or else the one its ID names. */
    const answered = (current: Session, answer: Answer, bytes: Buffer): Entry | undefined => {
      const inFlight = current.inFlight
      if (current.inFlightHead < inFlight.length) {
        const head = inFlight[current.inFlightHead]!
        if (head.id0 === answer.id0 && head.id1 === answer.id1 && head.id2 === answer.id2) {
          inFlight[current.inFlightHead++] = undefined
          // Stryker disable next-line ConditionalExpression,BlockStatement: equivalent for `false` and the empty block: without the reset the array only keeps its answered slots longer (the head moves past them all the same); `true`, ignored with them, is not equivalent (KeepAliveState: "a lease let go and kept alive again")
          if (current.inFlightHead === inFlight.length) {
            inFlight.length = 0
            current.inFlightHead = 0
          }
          // a lease let go (or lost) while its keepalive was in flight is "gone": `handle` skips it
          return head
        }
        // not in the order sent (no etcd does that): the order starts over with the next keepalive
        inFlight.length = 0
        current.inFlightHead = 0
      }
      return entries.get(bytes.toString("latin1", answer.idStart, answer.idEnd))
    }

    /** The record every answer is read into. */
    // Stryker disable next-line ObjectLiteral: equivalent because `readAnswer` sets every field before one is read
    const answer: Answer = { idStart: 0, idEnd: 0, id0: 0, id1: 0, id2: 0, ttl: 0 }

    /** An answer, handled where the stream delivers it: no Effect, no queue, no allocation. */
    const handle = (current: Session, bytes: Buffer): void => {
      readAnswer(bytes, answer)
      const now = clock()
      current.lastHeard = now
      const entry = answered(current, answer, bytes)
      // none in flight: a duplicate answer, or one to a stream replaced since
      if (entry === undefined || entry.state !== "inFlight") return
      const ttl = answer.ttl
      if (!(ttl > 0)) return lose(entry, "expired")
      entry.ttlMs = ttl * 1000
      entry.deadline = entry.sentAt + entry.ttlMs
      entry.nextSend = now + refreshMillis(entry.interval, entry.ttlMs)
      // Stryker disable next-line StringLiteral: equivalent because no code tells "waiting" from another state that is neither "inFlight" nor "gone"
      entry.state = "waiting"
      // Stryker disable next-line all: metrics only, what the leases do does not depend on it (Metrics.test checks it)
      if (metered) measureAnswer(entry, now)
      awaitNext(entry)
    }

    // Stryker disable all: metrics only (Metrics.test checks them)
    /** Metrics (`metrics.ts`): the round trip, and once a second the smallest TTL left of the leases. */
    const metered = transport.metrics?.enabled === true
    let nextTtlScan = 0
    const measureAnswer = (entry: Entry, now: number): void => {
      let smallest: number | undefined
      if (now >= nextTtlScan) {
        nextTtlScan = now + 1_000
        smallest = Infinity
        for (const held of entries.values()) smallest = Math.min(smallest, held.deadline - now)
        smallest = Math.max(0, smallest) / 1000
      }
      Metrics.keepAliveAnswered(now - entry.sentAt, smallest)
    }
    // Stryker restore all

    /** Whether the runner may let the stream go: no lease was left for the linger time (see `tick`). */
    const idle = (): boolean => entries.size === 0 && lingerUntil === Infinity

    const run: Effect.Effect<void> = Effect.scoped(Effect.gen(function*() {
      yield* ticker
      yield* runStream<Session>(transport, {
        path: keepAlivePath,
        // no PINGs of its own: the keepalives are requests answered every few seconds
        openOptions: { requireLeader: true },
        makeSession: () => new Session(clock()),
        onMessage: handle,
        wanted: () => entries.size > 0,
        idle,
        opened: (current) => {
          session = current
          // whatever was in flight on the old stream is answered nowhere: send again what is due
          const now = clock()
          for (const entry of entries.values()) {
            // Stryker disable next-line StringLiteral: equivalent because no code tells "waiting" from another state that is neither "inFlight" nor "gone"
            entry.state = "waiting"
            if (now >= entry.nextSend && now < entry.deadline) send(current, entry, now)
          }
          flush(current)
        },
        closed: () => {
          session = undefined
        },
        backoff,
        // none: a lease lives on the server until its TTL has passed, whatever stops the
        // stream; its holders learn it is lost from its deadline (`check`)
        // Stryker disable next-line ArrowFunction: equivalent because undefined is as false to the runner
        isFatal: () => false,
        giveUp: () => {}
      })
      runner = undefined
    }))

    const release = (entry: Entry) => {
      entry.holders--
      if (entry.holders > 0 || entries.get(entry.key) !== entry) return
      forgetEntry(entry)
    }
    // one plain finalizer: the release touches no fiber state, so nothing of the fiber's is
    // saved and restored around it (as `Effect.acquireRelease` would, per lease)
    const keepAlive = (id: bigint, ttlSeconds: number, interval: Duration.Duration | undefined, scope: Scope.Scope) =>
      Effect.uninterruptible(
        Effect.suspend(() => {
          const varint = idVarint(id)
          const key = varint.toString("latin1")
          let entry = entries.get(key)
          if (entry === undefined) {
            const now = clock()
            const ttlMs = ttlSeconds * 1000
            const intervalMs = interval === undefined ? undefined : Duration.toMillis(interval)
            entry = {
              id,
              key,
              id0: 0,
              id1: 0,
              id2: 0,
              interval: intervalMs,
              lost: Deferred.unsafeMake<never, EtcdError.LeaseLost>(FiberId.none),
              listeners: new Set(),
              holders: 0,
              ttlMs,
              deadline: now + ttlMs,
              nextSend: now + refreshMillis(intervalMs, ttlMs),
              sentAt: 0,
              // Stryker disable next-line StringLiteral: equivalent because no code tells "waiting" from another state that is neither "inFlight" nor "gone"
              state: "waiting",
              slot: -1
            }
            setIdParts(entry, varint, 0, varint.length)
            entries.set(key, entry)
            // Stryker disable next-line all: metrics only, what the leases do does not depend on it (Metrics.test checks it)
            if (metered) Metrics.leaseHeld(1)
            lingerUntil = Infinity
            awaitNext(entry)
          }
          entry.holders++
          const held = entry
          let listener: ((error: EtcdError.LeaseLost) => void) | undefined
          const registered: KeepAlive = {
            lost: held.lost,
            ttl: () => Math.round(held.ttlMs / 1000),
            onLost: (f) => {
              listener = f
              held.listeners.add(f)
            }
          }
          const added = Scope.addFinalizer(
            scope,
            Effect.sync(() => {
              // Stryker disable next-line ConditionalExpression: equivalent because deleting undefined from the set changes nothing
              if (listener !== undefined) held.listeners.delete(listener)
              release(held)
            })
          )
          // acquisition is uninterruptible and a fork inherits that: the runner must stay interruptible
          return Effect.zipRight(
            added,
            Effect.suspend(() => {
              if (runner !== undefined) return Effect.succeed(registered)
              return Effect.map(Effect.forkIn(Effect.interruptible(run), hubScope), (fiber) => {
                runner = fiber
                return registered
              })
            })
          )
        })
      )

    return { keepAlive }
  })
