/**
 * Reading the client's metrics in tests: Effect's metrics are process-wide, so a test looks
 * at how much a step changed a metric's total, not at the total itself.
 */
import { Effect } from "effect"
import { EtcdMetrics } from "effect-etcd"

/** The sum of the values of a metric's series whose tags include `tags` (a histogram's: its count). */
export const total = (
  values: ReadonlyArray<EtcdMetrics.MetricValue>,
  name: string,
  tags: Record<string, string> = {}
) =>
  values
    .filter((value) => value.name === name && Object.entries(tags).every(([k, v]) => value.tags[k] === v))
    .reduce((sum, value) => sum + value.value, 0)

/** How much `effect` changed a metric's total (see `total`). */
export const delta = <A, E, R>(name: string, tags: Record<string, string>, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const before = total(yield* EtcdMetrics.snapshot, name, tags)
    const result = yield* effect
    const after = total(yield* EtcdMetrics.snapshot, name, tags)
    return [after - before, result] as const
  })
