/**
 * The protocol-level parts of the `Etcd` service (KV, Watch, Lease, keepalive hub) over
 * the in-memory store, with time taken from one Effect `Clock` and the fault hooks of
 * `EtcdMemory` applied to every call.
 */
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as EtcdError from "../../EtcdError.js"
import type { Method } from "../../EtcdMemory.js"
import type { Endpoint } from "../base/endpoint.js"
import type * as Metrics from "../base/metrics.js"
import type { KvRpc } from "../rpc/kvRpc.js"
import type { LeaseRpc } from "../rpc/leaseRpc.js"
import type { KeepAliveHub } from "../streams/keepAliveHub.js"
import { openInScope } from "../streams/watchHub.js"
import type { Subscription, WatchBatch, WatchHub, WatchSpec } from "../streams/watchHub.js"
import { measureCall } from "../transport/retry.js"
import type { Transport } from "../transport/transport.js"
import type { RequestOp } from "../wire/proto/generated/etcdserverpb/RequestOp.js"
import { keyString, Store } from "./store.js"
import type { Change, Limits } from "./store.js"

const paths: Record<Method, string> = {
  range: "/etcdserverpb.KV/Range",
  put: "/etcdserverpb.KV/Put",
  deleteRange: "/etcdserverpb.KV/DeleteRange",
  txn: "/etcdserverpb.KV/Txn",
  compact: "/etcdserverpb.KV/Compact",
  leaseGrant: "/etcdserverpb.Lease/LeaseGrant",
  leaseRevoke: "/etcdserverpb.Lease/LeaseRevoke",
  leaseTimeToLive: "/etcdserverpb.Lease/LeaseTimeToLive",
  leaseLeases: "/etcdserverpb.Lease/LeaseLeases",
  leaseKeepAlive: "/etcdserverpb.Lease/LeaseKeepAlive",
  watch: "/etcdserverpb.Watch/Watch"
}

interface Failure {
  remaining: number
  readonly error: EtcdError.EtcdError
  readonly methods: ReadonlySet<Method> | undefined
}

interface Hang {
  readonly until: number
  readonly methods: ReadonlySet<Method> | undefined
}

/** The fault hooks: failures taken one per matching call, hangs that hold calls until a clock time. */
export class Faults {
  private failures: Array<Failure> = []
  private hangs: Array<Hang> = []
  private readonly listeners = new Set<() => void>()

  failNext(count: number, error: EtcdError.EtcdError, methods: ReadonlyArray<Method> | undefined): void {
    if (count > 0) this.failures.push({ remaining: count, error, methods: methods && new Set(methods) })
    this.changed()
  }

  hangUntil(until: number, methods: ReadonlyArray<Method> | undefined): void {
    this.hangs.push({ until, methods: methods && new Set(methods) })
    this.changed()
  }

  /** Called once, at the next fault added. */
  onNextFault(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private changed(): void {
    const listeners = Array.from(this.listeners)
    this.listeners.clear()
    for (const listener of listeners) listener()
  }

  /** Whether a call of `method` made at `now` or later may meet a fault. */
  affects(method: Method, now: number): boolean {
    const covers = (methods: ReadonlySet<Method> | undefined) => methods === undefined || methods.has(method)
    return this.failures.some((f) => f.remaining > 0 && covers(f.methods)) ||
      this.hangs.some((h) => h.until > now && covers(h.methods))
  }

  clear(): void {
    this.failures = []
    this.hangs = []
  }

  /** The failure the next call of `method` takes, if any. */
  takeFailure(method: Method): EtcdError.EtcdError | undefined {
    if (this.failures.length === 0) return undefined
    const failure = this.failures.find((f) => f.remaining > 0 && (f.methods === undefined || f.methods.has(method)))
    if (failure === undefined) return undefined
    failure.remaining--
    if (failure.remaining === 0) this.failures = this.failures.filter((f) => f !== failure)
    return failure.error
  }

  /** Until when a call of `method` made at `now` hangs (0 when it does not). */
  hangsUntil(method: Method, now: number): number {
    if (this.hangs.length === 0) return 0
    this.hangs = this.hangs.filter((h) => h.until > now)
    let until = 0
    for (const hang of this.hangs) {
      if ((hang.methods === undefined || hang.methods.has(method)) && hang.until > until) until = hang.until
    }
    return until
  }
}

/** Settings of the memory service. */
export interface Settings {
  readonly limits: Limits
  readonly requestTimeout: Duration.Duration
  readonly progressInterval: Duration.Duration
  /** Whether calls are measured as a real client's are (`metrics.ts`), on the member `memory:0`. */
  readonly metrics: Metrics.Settings
}

/** The parts the `Etcd` service is made of, plus the store and the faults. */
export interface MemoryParts {
  readonly store: Store
  readonly faults: Faults
  readonly clock: Clock.Clock
  readonly kv: KvRpc
  readonly watches: WatchHub
  readonly leases: LeaseRpc
  readonly keepAlives: KeepAliveHub
  readonly transport: Transport
}

const endpoint: Endpoint = { url: "memory://etcd", address: "memory", host: "memory", port: 0, secure: false }

const noTransport = (method: string) =>
  new EtcdError.EtcdUnavailable({
    method,
    endpoints: [endpoint.url],
    reason: "EtcdMemory has no gRPC transport: this call needs a real etcd"
  })

const isMutation = (method: Method, request?: unknown): boolean => {
  switch (method) {
    case "put":
    case "deleteRange":
    case "compact":
    case "leaseGrant":
      return true
    case "txn": {
      const readOnly = (ops: ReadonlyArray<RequestOp> | undefined): boolean =>
        ops === undefined || ops.every((op) =>
          op.requestRange != null ||
          (op.requestTxn != null && readOnly(op.requestTxn.success) && readOnly(op.requestTxn.failure))
        )
      const txn = request as { success?: ReadonlyArray<RequestOp>; failure?: ReadonlyArray<RequestOp> }
      return !(readOnly(txn.success) && readOnly(txn.failure))
    }
    default:
      return false
  }
}

/** Resumes after the event loop's next turn: after every fiber ready to run has run, as an answer from a server would. */
const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})

/** Builds the parts; the background fibers (lease expiry, keepalives, progress) end with the scope. */
export const make = (settings: Settings): Effect.Effect<MemoryParts, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const store = new Store(settings.limits)
    const faults = new Faults()
    const now = () => clock.unsafeCurrentTimeMillis()
    const wake = yield* Queue.sliding<void>(1)

    // lease expiry: sleeps until the earliest deadline, woken early when a lease is granted
    yield* Effect.gen(function*() {
      while (true) {
        const current = now()
        const next = store.expire(current)
        const sleep = next === undefined ? Effect.never : clock.sleep(Duration.millis(Math.max(0, next - current)))
        yield* Effect.raceFirst(sleep, Queue.take(wake))
      }
    }).pipe(Effect.interruptible, Effect.forkScoped)

    /** A call: its faults first, then the store, with leases expired as of now. */
    const call = <A>(
      method: Method,
      timeout: Duration.DurationInput | undefined,
      f: () => A,
      request?: unknown
    ): Effect.Effect<A, EtcdError.EtcdError> =>
      // the unary calls only: a watch's creation and a keepalive are messages on streams
      settings.metrics.enabled && method !== "watch" && method !== "leaseKeepAlive"
        ? measureCall(unmeasured(method, timeout, f, request), paths[method], () => endpoint)
        : unmeasured(method, timeout, f, request)

    const unmeasured = <A>(
      method: Method,
      timeout: Duration.DurationInput | undefined,
      f: () => A,
      request?: unknown
    ): Effect.Effect<A, EtcdError.EtcdError> =>
      // as a write to a server does, a write (or a watch's creation) lets what is ready to
      // run go first: it is applied after the event loop's next turn, as I/O is answered, so
      // a watcher forked just before a put may exist by the time the put is applied. Reads
      // need no turn: no watcher can miss them (and a turn costs tens of µs a call)
      Effect.zipRight(
        isMutation(method, request) || method === "leaseRevoke" || method === "watch" ? nextTurn : Effect.void,
        Effect.suspend(() => {
          const failure = faults.takeFailure(method)
          if (failure !== undefined) return Effect.fail(failure)
          const current = now()
          const until = faults.hangsUntil(method, current)
          const hang = until === 0 ? Effect.void : clock.sleep(Duration.millis(until - current))
          const deadline = Duration.decode(timeout ?? settings.requestTimeout)
          const run = () => {
            store.expire(now())
            try {
              return Effect.succeed(f())
            } catch (error) {
              if (EtcdError.isEtcdError(error)) return Effect.fail(error)
              throw error
            }
          }
          if (until === 0) return run()
          return Effect.zipRight(
            hang.pipe(
              // a call in a finalizer (a revoke, a lock's delete) runs uninterruptibly: the
              // sleep must stay interruptible, or its deadline would wait for it to end, where
              // a real member's call is failed by the transport at its deadline
              Effect.interruptible,
              Effect.timeoutFail({
                duration: deadline,
                onTimeout: (): EtcdError.EtcdError => {
                  const timeoutError = new EtcdError.EtcdTimeout({
                    method: paths[method],
                    timeout: deadline,
                    endpoint: endpoint.url
                  })
                  return isMutation(method, request)
                    ? new EtcdError.AmbiguousOutcome({ method: paths[method], cause: timeoutError })
                    : timeoutError
                }
              })
            ),
            Effect.suspend(run)
          )
        })
      )

    const kv: KvRpc = {
      range: (request, options) =>
        call("range", options?.timeout, () => store.range(request)).pipe(EtcdError.within("read")),
      put: (request, options) => call("put", options?.timeout, () => store.put(request)).pipe(EtcdError.within("put")),
      deleteRange: (request, options) =>
        call("deleteRange", options?.timeout, () => store.deleteRange(request)).pipe(EtcdError.within("delete")),
      txn: (request, options) =>
        call("txn", options?.timeout, () => store.txn(request), request).pipe(EtcdError.within("txn")),
      compact: (request, options) =>
        call("compact", options?.timeout, () => {
          store.compact(BigInt(String(request.revision ?? 0)))
          return { header: store.header() }
        }).pipe(EtcdError.within("compact"))
    }

    const leases: LeaseRpc = {
      grant: (request, options) =>
        call("leaseGrant", options?.timeout, () => {
          const granted = store.grant(BigInt(String(request.ID ?? 0)), Number(String(request.TTL ?? 0)), now())
          wake.unsafeOffer(undefined)
          return { header: store.header(), ID: granted.id.toString(), TTL: granted.ttl.toString(), error: "" }
        }).pipe(EtcdError.within("leaseGrant")),
      revoke: (id, options) =>
        call("leaseRevoke", options?.timeout, () => {
          store.revoke(id)
        }).pipe(EtcdError.within("lease")),
      timeToLive: (request, options) =>
        call("leaseTimeToLive", options?.timeout, () => {
          const status = store.timeToLive(BigInt(request.ID), now())
          return {
            header: store.header(),
            ID: request.ID,
            TTL: status.ttl.toString(),
            grantedTTL: status.grantedTtl.toString(),
            keys: request.keys ? status.keys : []
          }
        }).pipe(EtcdError.within("lease")),
      leases: (options) =>
        call("leaseLeases", options?.timeout, () => ({
          header: store.header(),
          leases: store.leaseIds().map((id) => ({ ID: id.toString() }))
        })).pipe(EtcdError.within("call")),
      keepAliveOnce: (id, options) =>
        call("leaseKeepAlive", options?.timeout, () => ({
          header: store.header(),
          ID: id.toString(),
          TTL: store.keepAlive(id, now()).toString()
        })).pipe(EtcdError.within("lease"))
    }

    const keepAlives: KeepAliveHub = {
      keepAlive: (id, ttlSeconds, interval, scope) =>
        Effect.gen(function*() {
          const lost = yield* Deferred.make<never, EtcdError.LeaseLost>()
          let ttl = ttlSeconds
          let listener: ((error: EtcdError.LeaseLost) => void) | undefined
          const lose = (reason: EtcdError.LeaseLost["reason"]) => {
            const error = new EtcdError.LeaseLost({ leaseId: id, reason })
            Deferred.unsafeDone(lost, Exit.fail(error))
            listener?.(error)
            listener = undefined
          }
          const unsubscribe = store.onLeaseEnd((ended, reason) => {
            if (ended === id) lose(reason)
          })
          yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
          const period = () => interval ?? Duration.millis(Math.max(1, ttl) * 1000 / 3)
          // While no fault can meet its keepalives, the store holds the lease (it cannot
          // expire) and this fiber sleeps until a fault is added: no clock wake-up every TTL/3.
          // Then it lets go, as after a keepalive just answered, and sends keepalives through
          // the faults every period until none can meet them any more.
          let release: ((now: number) => void) | undefined
          const letGo = Effect.sync(() => {
            release?.(now())
            release = undefined
            // its deadline counts again: the expiry fiber may sleep past it
            wake.unsafeOffer(undefined)
          })
          yield* Effect.addFinalizer(() => letGo)
          const nextFault = Effect.async<void>((resume) => {
            const cancel = faults.onNextFault(() => resume(Effect.void))
            return Effect.sync(cancel)
          })
          yield* Effect.gen(function*() {
            while (true) {
              if (!faults.affects("leaseKeepAlive", now())) {
                // a lease whose deadline passed while its keepalives failed is not held, but expired
                store.expire(now())
                release = store.hold(id)
                yield* nextFault
                yield* letGo
                continue
              }
              yield* clock.sleep(period())
              const answer = yield* Effect.either(leases.keepAliveOnce(id))
              if (answer._tag === "Right") {
                const granted = Number(answer.right.TTL)
                if (granted <= 0) {
                  lose("expired")
                  return
                }
                ttl = granted
              }
              // a failed keepalive is tried again at the next period; the store tells when the lease ends
            }
          }).pipe(
            Effect.raceFirst(Deferred.await(lost).pipe(Effect.ignore)),
            Effect.interruptible,
            Effect.forkScoped
          )
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              listener = undefined
            })
          )
          return {
            lost,
            ttl: () => ttl,
            onLost: (f: (error: EtcdError.LeaseLost) => void) => {
              listener = f
            }
          }
        }).pipe(Scope.extend(scope))
    }

    let nextWatchId = 0n
    const subscribe = (spec: WatchSpec): Effect.Effect<Subscription, EtcdError.EtcdError, Scope.Scope> =>
      Effect.gen(function*() {
        yield* call("watch", undefined, () => undefined)
        const mailbox = yield* Mailbox.make<WatchBatch, EtcdError.EtcdError>()
        let sentAt = store.revision
        const setup = yield* Effect.suspend(() => {
          store.expire(now())
          const interval = storeInterval(spec.key, spec.rangeEnd)
          const deliver = (revision: bigint, changes: ReadonlyArray<Change>) => {
            const picked: Array<WatchBatch["events"][number]> = []
            for (const change of changes) {
              if (!interval(change.key)) continue
              if (change.version.tombstone ? spec.noDelete : spec.noPut) continue
              const event = store.toEvent(change)
              picked.push(spec.prevKv ? event : { ...event, prevKv: null })
            }
            if (picked.length === 0) return
            let bytes = 0
            for (const event of picked) bytes += event.kv!.key.length + event.kv!.value.length
            sentAt = revision
            mailbox.unsafeOffer({ revision, events: picked, progress: false, bytes })
          }
          const start = spec.startRevision !== undefined && spec.startRevision > 0n
            ? spec.startRevision
            : store.revision + 1n
          try {
            for (const changes of store.historyFrom(start, paths.watch)) deliver(changes.revision, changes.changes)
          } catch (error) {
            if (EtcdError.isEtcdError(error)) return Effect.fail(error)
            throw error
          }
          const unsubscribe = store.onChanges((changes) => {
            if (changes.revision >= start) deliver(changes.revision, changes.changes)
          })
          return Effect.succeed(unsubscribe)
        })
        yield* Effect.addFinalizer(() => Effect.zipRight(Effect.sync(setup), mailbox.shutdown))
        if (spec.progressNotify) {
          yield* Effect.gen(function*() {
            while (true) {
              const before = sentAt
              yield* clock.sleep(settings.progressInterval)
              if (sentAt === before) {
                sentAt = store.revision
                mailbox.unsafeOffer({ revision: store.revision, events: [], progress: true, bytes: 0 })
              }
            }
          }).pipe(Effect.interruptible, Effect.forkScoped)
        }
        const watchId = spec.watchId ?? nextWatchId++
        const take = Effect.matchEffect(mailbox.takeAll, {
          onFailure: (error) => Effect.fail(Option.some(error)),
          onSuccess: ([batches, done]) =>
            done && batches.length === 0 ? Effect.fail(Option.none()) : Effect.succeed(batches)
        })
        // its batches are decoded already: nothing to gain from parts
        return { watchId, createdRevision: store.revision, take: () => take }
      })
    const watches: WatchHub = {
      open: openInScope(subscribe),
      // one member, whose every watcher has been sent what it has: its revision, after the
      // event loop's next turn, as an answer from a server would come
      requestProgress: (options) => call("watch", options.timeout, () => store.revision)
    }

    const transport: Transport = {
      endpoints: [endpoint],
      metrics: settings.metrics,
      requestTimeout: settings.requestTimeout,
      unary: <Req, Res, E>(
        method: { readonly path: string },
        _request: Req,
        _options: unknown,
        mapFailure?: (failure: Effect.Effect<Res, EtcdError.EtcdError>) => Effect.Effect<Res, E>
      ): Effect.Effect<Res, E> => {
        const failure: Effect.Effect<Res, EtcdError.EtcdError> = Effect.fail(noTransport(method.path))
        return mapFailure === undefined ? failure as Effect.Effect<Res, E> : mapFailure(failure)
      },
      unaryTo: (_endpoint, method) => Effect.fail(noTransport(method.path)),
      duplex: (method) => Effect.fail(noTransport(method.path)),
      framedDuplex: (path) => Effect.fail(noTransport(path)),
      serverStream: (method) => Effect.fail(noTransport(method.path)),
      streamError: (method, _endpoint, error) =>
        new EtcdError.EtcdUnknown({ method, code: 2, details: String(error), cause: error }),
      reportFailure: () => {},
      current: () => endpoint,
      memberEndpoints: () => [endpoint],
      setEndpoints: () => Effect.void,
      probe: () => Effect.void,
      refreshToken: () => Effect.void,
      token: () => Option.none(),
      authenticates: false
    }

    return { store, faults, clock, kv, watches, leases, keepAlives, transport }
  })

/** Whether a key (as the store holds it) is in a watcher's range. */
const storeInterval = (key: Buffer, rangeEnd: Buffer | undefined) => {
  const start = keyString(key)
  const end = rangeEnd === undefined || rangeEnd.length === 0
    ? undefined
    : rangeEnd.length === 1 && rangeEnd[0] === 0
    ? ""
    : keyString(rangeEnd)
  return (candidate: string): boolean =>
    end === undefined ? candidate === start : candidate >= start && (end === "" || candidate < end)
}
