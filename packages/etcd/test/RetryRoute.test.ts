/**
 * Where a unary call's attempts go and how much of its deadline each may take
 * (internal/transport/retry.ts's routes over internal/transport/members.ts): the failover
 * route of `Transport.unary` and the pinned route of `Transport.unaryTo`. The members are
 * dialled lazily, so no server is needed: nothing here sends a call. The monotonic clock of
 * the deadlines (`performance.now`, internal/base/monotonic.ts) is stubbed so that an
 * attempt's deadline is read exactly.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import { type Endpoint, parse } from "../src/internal/base/endpoint.js"
import * as Members from "../src/internal/transport/members.js"
import * as Retry from "../src/internal/transport/retry.js"

const endpoint = (url: string): Endpoint => {
  const parsed = parse(url)
  if (typeof parsed === "string") throw new Error(parsed)
  return parsed
}

const membersOf = (...urls: Array<string>) =>
  Members.make({
    endpoints: urls.map(endpoint),
    tlsConnect: undefined,
    channelOptions: {},
    maxReceiveMessageBytes: 4 * 1024 * 1024
  })

const now = 1_000_000

describe("retry routes", () => {
  beforeEach(() => {
    vi.spyOn(performance, "now").mockReturnValue(now)
  })
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it.scoped("failover: a read on several members gets half of what is left, a second at least", () =>
    Effect.gen(function*() {
      const route = Retry.failover(yield* membersOf("http://127.0.0.1:1", "http://127.0.0.1:2"))
      expect(route.attemptDeadline(10_000, "repeatable") - now).toBe(5_000)
      expect(route.attemptDeadline(1_500, "repeatable") - now).toBe(1_000)
      expect(route.attemptDeadline(600, "repeatable") - now).toBe(600)
      // a write gets all of it: sent again elsewhere only when never sent, it must not be cut short
      expect(route.attemptDeadline(10_000, "mutation") - now).toBe(10_000)
    }))

  it.scoped("failover on one member, and a pinned route: every attempt gets all of what is left", () =>
    Effect.gen(function*() {
      const members = yield* membersOf("http://127.0.0.1:1", "http://127.0.0.1:2")
      const single = Retry.failover(yield* membersOf("http://127.0.0.1:1"))
      expect(single.attemptDeadline(10_000, "repeatable") - now).toBe(10_000)
      const pinned = Retry.pinned(members.all()[1])
      expect(pinned.attemptDeadline(10_000, "repeatable") - now).toBe(10_000)
      expect(pinned.member().endpoint.url).toBe("http://127.0.0.1:2")
    }))

  it.scoped("an attempt's deadline is on the monotonic clock: a step of the wall clock moves none", () =>
    Effect.gen(function*() {
      const failover = Retry.failover(yield* membersOf("http://127.0.0.1:1", "http://127.0.0.1:2"))
      const pinned = Retry.pinned(failover.member())
      const wall = vi.spyOn(Date, "now")
      for (const step of [-3_600_000, 3_600_000]) {
        wall.mockReturnValue(now + step)
        expect(failover.attemptDeadline(10_000, "repeatable") - now).toBe(5_000)
        expect(failover.attemptDeadline(10_000, "mutation") - now).toBe(10_000)
        expect(pinned.attemptDeadline(10_000, "repeatable") - now).toBe(10_000)
      }
    }))

  it.scoped("failover: a transient failure on the preferred member moves the next attempt to the next one", () =>
    Effect.gen(function*() {
      const members = yield* membersOf("http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3")
      const route = Retry.failover(members)
      const first = route.member()
      expect(first.endpoint.url).toBe("http://127.0.0.1:1")
      // a failure reported on a member that is no longer preferred moves nothing
      route.reportFailure(members.all()[2])
      expect(route.member()).toBe(first)
      route.reportFailure(first)
      expect(route.member().endpoint.url).toBe("http://127.0.0.1:2")
      // a pinned route reports nothing: unaryTo's failures leave the preferred member alone
      Retry.pinned(route.member()).reportFailure(route.member())
      expect(route.member().endpoint.url).toBe("http://127.0.0.1:2")
    }))
})
