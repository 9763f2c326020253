import { expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Duration,
  Effect,
  Exit,
  Fiber,
  HashMap,
  Inspectable,
  Layer,
  Logger,
  Option,
  Schema,
  Stream
} from "effect"
import {
  Compare,
  Election,
  EtcdError,
  EtcdMemory,
  KeyRange,
  Keyspace,
  Kv,
  Lease,
  Lock,
  Mirror,
  Op,
  RwLock,
  Session,
  Txn,
  Watch
} from "effect-etcd"
import { inspect } from "node:util"

// Every value the API returns or fails with must print, and serialize, through every printer a
// user meets: JSON.stringify, String, node's inspect, Inspectable, Exit and Cause printing, and
// Effect's loggers (default, logfmt, JSON, structured, pretty). Revisions and lease IDs are
// bigints, which JSON.stringify refuses: they print as decimal strings.

/** A lease ID above 2^53, as etcd gives them: a number would lose its last digits. */
const bigLease = 7587883535911190557n

/** Every bigint among the own fields of a value, one level down, by field name. */
const bigintsOf = (value: unknown): Array<[string, bigint]> =>
  typeof value === "object" && value !== null
    ? Object.entries(value).filter((entry): entry is [string, bigint] => typeof entry[1] === "bigint")
    : []

/** One value through every printer but the loggers: none throws, and each shows its bigints. */
const printsEverywhere = (name: string, value: unknown): void => {
  let json: string
  try {
    json = JSON.stringify(value)
  } catch (error) {
    throw new Error(`${name}: JSON.stringify threw ${String(error)}`)
  }
  for (const [field, bigint] of bigintsOf(value)) {
    expect(json, `${name}.${field}`).toContain(Array.isArray(value) ? `"${bigint}"` : `"${field}":"${bigint}"`)
  }
  const text = String(value)
  expect(text, name).not.toContain("[object Object]")
  // an error's String is its name and message; a record's is its JSON
  if (!(value instanceof Error)) {
    for (const [, bigint] of bigintsOf(value)) expect(text, name).toContain(bigint.toString())
  }
  expect(inspect(value, { depth: 6 }), name).not.toContain("[object Object]")
  expect(Inspectable.toStringUnknown(value), name).not.toContain("[object Object]")
  expect(JSON.stringify(Inspectable.toJSON(value)), name).toBeTypeOf("string")
  expect(String(Exit.succeed(value)), name).not.toContain("[object Object]")
  expect(String(Exit.fail(value)), name).not.toContain("[object Object]")
  expect(Cause.pretty(Cause.fail(value)), name).toBeTypeOf("string")
  expect(Cause.pretty(Cause.die(value)), name).toBeTypeOf("string")
  // vitest's diff of a failed assertion is built, not thrown over
  expect(() => expect(value).toEqual({ different: 1 }), name).toThrowError(/expected/)
}

/** Logs the value (and an Exit of it) with `logger` as the only logger; gives the lines. */
const logLines = (logger: Logger.Logger<unknown, string>, value: unknown) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.map(logger, (line) => {
      lines.push(line)
    })
    const exit = yield* Effect.exit(
      Effect.zipRight(Effect.log(value), Effect.log("failed with", Exit.fail(value))).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture))
      )
    )
    return { exit, lines }
  })

const loggers: ReadonlyArray<readonly [string, Logger.Logger<unknown, string>]> = [
  ["default", Logger.stringLogger],
  ["logfmt", Logger.logfmtLogger],
  ["json", Logger.jsonLogger],
  ["structured", Logger.map(Logger.structuredLogger, (entry) => JSON.stringify(entry))]
]

/** One value through every logger: none kills the fiber, and each line shows the value's bigints. */
const logsEverywhere = (name: string, value: unknown) =>
  Effect.gen(function*() {
    for (const [label, logger] of loggers) {
      const { exit, lines } = yield* logLines(logger, value)
      expect(Exit.isSuccess(exit), `${name} with the ${label} logger: ${String(exit)}`).toBe(true)
      expect(lines.length).toBe(2)
      for (const line of lines) expect(line, `${name} (${label})`).not.toContain("[object Object]")
      for (const [, bigint] of bigintsOf(value)) expect(lines[0], `${name} (${label})`).toContain(bigint.toString())
    }
    // the pretty logger writes to the console, and inspects objects
    const pretty = yield* Effect.exit(
      Effect.log(value).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ colors: false, mode: "tty" }))),
        Effect.withConsole(silentConsole)
      )
    )
    expect(Exit.isSuccess(pretty), `${name} with the pretty logger`).toBe(true)
  })

/** A console that prints nothing (for the pretty logger). */
const silentConsole = {
  ...Effect.runSync(Effect.console),
  unsafe: { ...console, log: () => {}, group: () => {}, groupEnd: () => {}, error: () => {} } as Console
}

/** One of every exported error, each with bigints and a cause where it takes them. */
const everyError = (): Array<[string, EtcdError.EtcdError]> => {
  const timeout = new EtcdError.Timeout({ method: "etcdserverpb.KV/Put", timeout: Duration.seconds(5) })
  const fields = {
    method: "etcdserverpb.KV/Range",
    compactRevision: 41n,
    requestedRevision: 40n,
    leaseId: bigLease,
    revision: 42n,
    size: 2_000_000,
    reason: "why",
    option: "revision",
    endpoint: "http://127.0.0.1:1",
    endpoints: ["http://127.0.0.1:1"],
    failures: [],
    username: "root",
    path: "/tmp/snapshot.db",
    bytesReceived: 10,
    lockName: "locks/a",
    electionName: "elections/a",
    key: "elections/a/1",
    attempts: 3,
    part: "value",
    direction: "decode",
    code: 2,
    details: "details",
    timeout: Duration.seconds(5)
  }
  const errors: Array<[string, EtcdError.EtcdError]> = []
  for (const [name, value] of Object.entries(EtcdError)) {
    if (typeof value !== "function" || !(value.prototype instanceof Error)) continue
    const Constructor = value as unknown as new(args: object) => EtcdError.EtcdError
    // an ambiguous outcome's cause is the failure of the write; any other cause has bigints too
    const cause = name === "AmbiguousOutcome" ? timeout : new EtcdError.Compacted({ compactRevision: 41n })
    const args = { ...fields, cause }
    errors.push([name, new Constructor(args)])
  }
  return errors
}

it.effect("every exported error prints and serializes, its bigints as decimal strings", () =>
  Effect.gen(function*() {
    const errors = everyError()
    // as many as the EtcdError union has members
    expect(errors.length).toBeGreaterThanOrEqual(33)
    for (const [name, error] of errors) {
      printsEverywhere(name, error)
      expect(JSON.parse(JSON.stringify(error))).toMatchObject({ _tag: error._tag, message: error.message })
      yield* logsEverywhere(name, error)
    }
    const compacted = new EtcdError.Compacted({ compactRevision: 41n, requestedRevision: 40n })
    expect(JSON.parse(JSON.stringify(compacted))).toEqual({
      _tag: "Compacted",
      message: compacted.message,
      compactRevision: "41",
      requestedRevision: "40"
    })
    // a cause with bigints, in an error, in an Exit
    expect(JSON.parse(String(Exit.fail(new EtcdError.AmbiguousOutcome({ cause: compacted as any })))))
      .toMatchObject({ cause: { error: { cause: { compactRevision: "41" } } } })
  }))

it.effect("the errors a server gives print with Logger.json, every field included", () =>
  Effect.gen(function*() {
    yield* Kv.put("printing/a", "1")
    const { revision } = yield* Kv.put("printing/a", "2")
    yield* Kv.compact(revision)
    const compacted = yield* Effect.flip(Kv.get("printing/a", { revision: revision - 1n }))
    const future = yield* Effect.flip(Kv.get("printing/a", { revision: revision + 100n }))
    const notFound = yield* Effect.flip(Lease.revoke(bigLease))
    // a future revision says which, and the current one
    expect(future).toMatchObject({ requestedRevision: revision + 100n, currentRevision: revision })
    for (const error of [compacted, future, notFound]) {
      const { exit, lines } = yield* logLines(Logger.jsonLogger, error)
      expect(Exit.isSuccess(exit)).toBe(true)
      const logged = JSON.parse(lines[0]).message
      expect(logged).toMatchObject({ _tag: error._tag, message: error.message })
      for (const [field, bigint] of bigintsOf(error)) expect(logged[field]).toBe(bigint.toString())
    }
    expect(JSON.parse(lines0(yield* logLines(Logger.jsonLogger, compacted))).message).toMatchObject({
      compactRevision: revision.toString()
    })
  }).pipe(Effect.provide(EtcdMemory.layer())))

const lines0 = (logged: { readonly lines: ReadonlyArray<string> }): string => logged.lines[0]

it.scoped("every exported result and handle prints and serializes, its bigints as decimal strings", () =>
  Effect.gen(function*() {
    const values: Array<[string, unknown]> = []
    const add = (name: string, value: unknown) => values.push([name, value])

    const watcher = yield* Watch.subscribe(KeyRange.prefix("p/"), { prevKv: true })
    const grant = yield* Lease.grant(30, { id: bigLease })
    add("Lease.Grant", grant)
    add("Lease.TimeToLive", yield* Lease.timeToLive(grant.id, { keys: true }))
    const put = yield* Kv.put("p/a", "1", { lease: grant.id })
    add("Kv.PutResult", put)
    add("Kv.PutResult with prevKv", yield* Kv.put("p/a", "2", { prevKv: true, lease: grant.id }))
    add("Kv.RangeResult", yield* Kv.range(KeyRange.prefix("p/")))
    add("KeyValue", Option.getOrThrow(yield* Kv.getKeyValue("p/a")))
    add("Kv.DeleteResult", yield* Kv.delete("p/a", { prevKv: true }))
    add("Txn.TxnResult", yield* Txn.txn([Op.put("p/b", "1"), Op.get("p/a"), Op.delete("p/c")]))
    add("Compare", Compare.modRevision("p/b").greaterThan(put.revision))
    const responses = yield* watcher.responses.pipe(Stream.take(3), Stream.runCollect)
    const events = Chunk.toReadonlyArray(responses).flatMap((response) => response.events)
    add("Watch.WatchResponse", Chunk.unsafeGet(responses, 0))
    add("Watch.WatchEvent (put)", events.find((event) => event._tag === "Put"))
    add("Watch.WatchEvent (delete)", events.find((event) => event._tag === "Delete"))
    add("Lease.Lease", yield* Lease.make(30))
    add("Lease.leases", yield* Lease.leases())
    add("Watch.Watcher", watcher)
    const session = yield* Session.make({ ttl: 30 })
    add("Session", session)
    add("Lock", yield* Lock.make("p/lock"))
    add("RwLock", yield* RwLock.read("p/rw"))
    const leadership = yield* Election.campaign("p/election", "me")
    add("Election.Leadership", leadership)
    add("Election.Leader", Option.getOrThrow(yield* Election.leader("p/election")))

    const space = Keyspace.json("p/json/", Schema.Struct({ n: Schema.Number }))
    const { revision: from } = yield* space.put("one", { n: 1 })
    yield* space.delete("one")
    // from the put's revision on: both changes, whenever the watch is made
    const spaceEvents = Chunk.toReadonlyArray(
      yield* space.watch({ startRevision: from }).pipe(Stream.take(2), Stream.runCollect)
    )
    add("Keyspace.Event (put)", spaceEvents[0])
    add("Keyspace.Event (delete)", spaceEvents[1])
    yield* space.put("two", { n: 2 })
    const entries = yield* space.getAll()
    add("Keyspace.Entries", entries)
    add("Keyspace.Entry", entries.entries.get("two"))

    const mirror = yield* Mirror.prefix("p/m/")
    yield* mirror.ready
    // the changes Stream sees what is applied once it runs: write until it has a put and a delete
    const changes = yield* mirror.changes.pipe(
      Stream.filter((change) => change._tag !== "Resynced"),
      Stream.take(2),
      Stream.runCollect,
      Effect.fork
    )
    for (let i = 0; i < 100 && Option.isNone(yield* Fiber.poll(changes)); i++) {
      yield* Kv.put("p/m/x", "1")
      const { revision } = yield* Kv.delete("p/m/x")
      yield* mirror.waitFor(revision)
      yield* Effect.yieldNow()
    }
    const mirrorChanges = Chunk.toReadonlyArray(yield* Fiber.join(changes))
    add("Mirror.Change (put)", mirrorChanges[0])
    add("Mirror.Change (delete)", mirrorChanges[1])
    add("Mirror.Snapshot", yield* mirror.snapshot)

    for (const [name, value] of values) {
      expect(value, name).toBeDefined()
      printsEverywhere(name, value)
      yield* logsEverywhere(name, value)
    }
    // a handle prints its data, not its effects
    expect(JSON.parse(JSON.stringify(session))).toEqual({
      _id: "Session",
      lease: { _id: "Lease", id: session.lease.id.toString(), ttl: session.lease.ttl }
    })
    expect(JSON.parse(String(grant))).toEqual({ _id: "Lease.Grant", id: bigLease.toString(), ttl: 30 })
    expect(JSON.parse(JSON.stringify(put))).toEqual({ revision: put.revision.toString(), prevKv: put.prevKv.toJSON() })
    expect(HashMap.size(HashMap.fromIterable(values))).toBe(values.length)
  }).pipe(Effect.provide(Layer.fresh(EtcdMemory.layer()))))
