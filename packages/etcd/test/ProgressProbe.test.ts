/** The watch stream's liveness check as a decision (internal/streams/progressProbe.ts), step by step. */
import { describe, expect, it } from "@effect/vitest"
import * as ProgressProbe from "../src/internal/streams/progressProbe.js"

const settings = ProgressProbe.settingsFor(2_000)

describe("ProgressProbe", () => {
  it("takes half of the request timeout to ask and half to answer, 500 ms each at least", () => {
    expect(settings).toEqual({ quietMillis: 1_000, answerMillis: 1_000 })
    expect(ProgressProbe.settingsFor(200)).toEqual({ quietMillis: 500, answerMillis: 500 })
    expect(ProgressProbe.tickMillis(settings)).toBe(250)
    expect(ProgressProbe.tickMillis(ProgressProbe.settingsFor(0))).toBe(125)
  })

  it("asks a stream quiet for quietMillis, and not before", () => {
    const facts = { lastHeard: 10_000, progressSentAt: undefined, answersProgress: true }
    expect(ProgressProbe.step(facts, 10_999, settings)).toBe("wait")
    expect(ProgressProbe.step(facts, 11_000, settings)).toBe("probe")
  })

  it("gives up a stream that heard nothing at all for answerMillis after asking", () => {
    const asked = { lastHeard: 10_000, progressSentAt: 11_000, answersProgress: true }
    expect(ProgressProbe.step(asked, 11_999, settings)).toBe("wait")
    expect(ProgressProbe.step(asked, 12_000, settings)).toBe("stalled")
  })

  it("anything heard since the request counts as progress: events queued before the answer", () => {
    const busy = { lastHeard: 11_800, progressSentAt: 11_000, answersProgress: true }
    expect(ProgressProbe.step(busy, 12_500, settings)).toBe("wait")
    expect(ProgressProbe.step(busy, 12_800, settings)).toBe("stalled")
  })

  it("never gives up a stream where progress requests were never answered (etcd's gRPC proxy)", () => {
    const proxy = { lastHeard: 0, progressSentAt: 0, answersProgress: false }
    expect(ProgressProbe.step(proxy, 3_600_000, settings)).toBe("wait")
  })
})
