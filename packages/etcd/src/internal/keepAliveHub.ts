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
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as EtcdError from "../EtcdError.js"
import { fromInt64, toInt64 } from "./codec.js"
import type { LeaseKeepAliveRequest } from "./proto/generated/etcdserverpb/LeaseKeepAliveRequest.js"
import type { LeaseKeepAliveResponse__Output } from "./proto/generated/etcdserverpb/LeaseKeepAliveResponse.js"
import { methods } from "./proto/loader.js"
import type { Duplex, Transport } from "./transport.js"

/** A registration of one holder of one lease. */
export interface KeepAlive {
  /** Fails with LeaseLost once the lease is lost; never succeeds. */
  readonly lost: Deferred.Deferred<never, EtcdError.LeaseLost>
  /** The TTL the server last reported, in seconds. */
  readonly ttl: () => number
}

/** The shared keepalive stream of one client. */
export interface KeepAliveHub {
  /**
   * Keeps `id` alive until the scope closes. `ttlSeconds` is the TTL the server just
   * granted or refreshed it with; `interval` overrides the TTL/3 refresh period.
   */
  readonly keepAlive: (
    id: bigint,
    ttlSeconds: number,
    interval?: Duration.Duration
  ) => Effect.Effect<KeepAlive, never, Scope.Scope>
}

interface Entry {
  readonly id: bigint
  readonly key: string
  readonly interval: number | undefined
  readonly lost: Deferred.Deferred<never, EtcdError.LeaseLost>
  holders: number
  ttlMs: number
  /** When the server may expire the lease if no further keepalive is acknowledged. */
  deadline: number
  /** When to send the next keepalive. */
  nextSend: number
  /** When the keepalive in flight was sent (0 when none). */
  sentAt: number
}

type Inbound =
  | { readonly _tag: "Response"; readonly response: LeaseKeepAliveResponse__Output }
  | { readonly _tag: "Error"; readonly error: unknown }
  | { readonly _tag: "End" }
  | { readonly _tag: "Idle" }
  | { readonly _tag: "LingerOver" }

interface Session {
  readonly duplex: Duplex<LeaseKeepAliveRequest, LeaseKeepAliveResponse__Output>
  readonly inbound: Queue.Queue<Inbound>
  /** Set once a keepalive went unanswered too long: the stream is being replaced. */
  stalled: boolean
}

const tickMillis = 100

/** How long the stream stays open once no lease is left. */
const lingerMillis = 10_000

/**
 * How long a keepalive may wait for its answer before the stream counts as stalled (a
 * member paused or cut off without the connection breaking) and is reopened on another
 * member, well before the lease's TTL runs out.
 */
const stallMillis = (entry: Entry): number => Math.max(1_000, entry.ttlMs / 4)
/** How long after an acknowledgement (or a registration) the next keepalive goes. */
const refreshMillis = (interval: number | undefined, ttlMs: number): number =>
  interval ?? Math.max(tickMillis, ttlMs / 3)
const idleMarker: Inbound = { _tag: "Idle" }
const lingerOverMarker: Inbound = { _tag: "LingerOver" }

/** Starts the hub; the stream is open while some lease is kept alive. */
export const make = (transport: Transport): Effect.Effect<KeepAliveHub, never, Scope.Scope> =>
  Effect.gen(function*() {
    const hubScope = yield* Effect.scope
    const entries = new Map<string, Entry>()
    let session: Session | undefined
    let runner: Fiber.RuntimeFiber<void> | undefined
    /**
     * The linger of an idle stream: a plain timer that tells the pump when it is over
     * (no race of fibers per lease released), cleared when a lease comes before.
     */
    let lingerTimer: ReturnType<typeof setTimeout> | undefined
    const stopLinger = () => {
      if (lingerTimer !== undefined) clearTimeout(lingerTimer)
      lingerTimer = undefined
    }
    yield* Effect.addFinalizer(() => Effect.sync(stopLinger))

    const lose = (entry: Entry, reason: EtcdError.LeaseLost["reason"]): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (entries.get(entry.key) === entry) entries.delete(entry.key)
        if (entries.size === 0) session?.inbound.unsafeOffer(idleMarker)
        return Deferred.fail(entry.lost, new EtcdError.LeaseLost({ leaseId: entry.id, reason }))
      })

    const sendDue = (now: number): void => {
      const current = session
      if (current === undefined) return
      for (const entry of entries.values()) {
        if (entry.sentAt === 0 && now >= entry.nextSend) {
          entry.sentAt = now
          current.duplex.call.write({ ID: toInt64(entry.id) })
        }
      }
    }

    /** Sends what is due and loses what is overdue; runs for as long as the runner does. */
    const ticker = Effect.gen(function*() {
      while (true) {
        const now = Date.now()
        for (const entry of [...entries.values()]) {
          if (now >= entry.deadline) yield* lose(entry, "keepalive-timeout")
        }
        const current = session
        if (current !== undefined && !current.stalled) {
          for (const entry of entries.values()) {
            if (entry.sentAt > 0 && now - entry.sentAt > stallMillis(entry)) {
              current.stalled = true
              current.inbound.unsafeOffer({ _tag: "Error", error: "keepalive unanswered" })
              break
            }
          }
        }
        sendDue(now)
        yield* Effect.sleep(Duration.millis(tickMillis))
      }
    })

    const handle = (response: LeaseKeepAliveResponse__Output): Effect.Effect<void> =>
      Effect.suspend(() => {
        const entry = entries.get(fromInt64(response.ID).toString())
        if (entry === undefined) return Effect.void
        const ttl = Number(response.TTL)
        if (!(ttl > 0)) return lose(entry, "expired")
        const now = Date.now()
        const sentAt = entry.sentAt === 0 ? now : entry.sentAt
        entry.ttlMs = ttl * 1000
        entry.deadline = sentAt + entry.ttlMs
        entry.nextSend = now + refreshMillis(entry.interval, entry.ttlMs)
        entry.sentAt = 0
        return Effect.void
      })

    const open = Effect.gen(function*() {
      const duplex = yield* transport.duplex(methods.lease.keepAlive, { requireLeader: true })
      const inbound = yield* Queue.unbounded<Inbound>()
      duplex.call.on("data", (response: LeaseKeepAliveResponse__Output) =>
        inbound.unsafeOffer({ _tag: "Response", response }))
      duplex.call.on("error", (error) =>
        inbound.unsafeOffer({ _tag: "Error", error }))
      duplex.call.on("end", () => inbound.unsafeOffer({ _tag: "End" }))
      return { duplex, inbound, stalled: false } satisfies Session
    })

    const close = (current: Session) =>
      Effect.sync(() => {
        const call = current.duplex.call
        call.removeAllListeners()
        call.on("error", () => {})
        call.cancel()
      })

    const lingerFrom = (current: Session): void => {
      stopLinger()
      lingerTimer = setTimeout(() => {
        lingerTimer = undefined
        current.inbound.unsafeOffer(lingerOverMarker)
      }, lingerMillis)
    }

    /** Reads responses until the stream breaks (true) or no lease was left for the linger time (false). */
    const pump = (current: Session): Effect.Effect<boolean> =>
      Effect.gen(function*() {
        if (entries.size === 0) lingerFrom(current)
        while (true) {
          const taken = yield* Queue.takeBetween(current.inbound, 1, Number.MAX_SAFE_INTEGER)
          for (const item of taken) {
            switch (item._tag) {
              case "Response":
                yield* handle(item.response)
                break
              case "Error":
              case "End":
                stopLinger()
                return true
              case "Idle":
                // no lease left: the stream stays open for the linger time
                if (entries.size === 0) lingerFrom(current)
                break
              case "LingerOver":
                // a lease that came during the linger keeps the stream
                if (entries.size === 0) return false
            }
          }
        }
      })

    const run: Effect.Effect<void> = Effect.scoped(Effect.gen(function*() {
      yield* Effect.forkScoped(ticker)
      let failures = 0
      while (entries.size > 0) {
        const opened = yield* Effect.either(open)
        if (opened._tag === "Right") {
          const current = opened.right
          session = current
          // whatever was in flight on the old stream is answered nowhere: send again
          for (const entry of entries.values()) entry.sentAt = 0
          sendDue(Date.now())
          const broken = yield* pump(current).pipe(Effect.ensuring(close(current)))
          session = undefined
          if (!broken) continue
          transport.reportFailure(current.duplex.endpoint)
          failures = 1
        } else {
          failures++
        }
        yield* Effect.sleep(Duration.millis(Math.min(1_000, 50 * 2 ** Math.min(failures, 5))))
      }
      runner = undefined
    }))

    const keepAlive = (id: bigint, ttlSeconds: number, interval?: Duration.Duration) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          const key = id.toString()
          let entry = entries.get(key)
          if (entry === undefined) {
            const now = Date.now()
            const ttlMs = ttlSeconds * 1000
            const intervalMs = interval === undefined ? undefined : Duration.toMillis(interval)
            entry = {
              id,
              key,
              interval: intervalMs,
              lost: yield* Deferred.make<never, EtcdError.LeaseLost>(),
              holders: 0,
              ttlMs,
              deadline: now + ttlMs,
              nextSend: now + refreshMillis(intervalMs, ttlMs),
              sentAt: 0
            }
            entries.set(key, entry)
          }
          entry.holders++
          stopLinger()
          // acquisition is uninterruptible and a fork inherits that: the runner must stay interruptible
          if (runner === undefined) runner = yield* Effect.forkIn(Effect.interruptible(run), hubScope)
          return entry
        }),
        (entry) =>
          Effect.sync(() => {
            entry.holders--
            if (entry.holders > 0 || entries.get(entry.key) !== entry) return
            entries.delete(entry.key)
            if (entries.size === 0 && session !== undefined) session.inbound.unsafeOffer(idleMarker)
          })
      ).pipe(Effect.map((entry): KeepAlive => ({ lost: entry.lost, ttl: () => Math.round(entry.ttlMs / 1000) })))

    return { keepAlive }
  })
