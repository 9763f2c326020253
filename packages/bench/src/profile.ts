/**
 * A CPU profile of one measured section (V8's sampling profiler through `node:inspector`),
 * its self time classified by where the code comes from: the Effect runtime, grpc-js,
 * protobuf, effect-etcd, node's internals, GC. It runs in a worker of its own after the
 * measured rounds, so that the profiler's overhead is in no figure of the table.
 */
import * as fs from "node:fs"
import * as inspector from "node:inspector/promises"
import * as path from "node:path"

/** Self time of one category, in µs per operation and as a share of the busy (non-idle) time. */
export interface Category {
  readonly name: string
  readonly us_per_op: number
  readonly share: number
}

/** What a profiled worker reports. */
export interface ProfileSummary {
  readonly workload: string
  readonly ops: number
  /** Busy (non-idle) CPU µs per op seen by the profiler (main thread only). */
  readonly busy_us_per_op: number
  readonly categories: ReadonlyArray<Category>
  /** The functions with the most self time: `name (file:line)`, µs per op. */
  readonly top: ReadonlyArray<{ readonly name: string; readonly us_per_op: number }>
}

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** The category of a frame, by its script's URL. */
const categoryOf = ({ functionName, url }: CallFrame): string => {
  if (functionName === "(garbage collector)") return "GC"
  if (functionName === "(idle)") return "idle"
  if (functionName === "(program)") return "V8 (program)"
  if (url.includes("/node_modules/effect/") || url.includes("/effect@")) return "Effect runtime"
  if (url.includes("@grpc/grpc-js") || url.includes("/grpc-js/")) return "grpc-js"
  if (url.includes("protobufjs") || url.includes("proto-loader") || url.includes("/long/")) return "protobuf"
  if (url.includes("/packages/etcd/")) return "effect-etcd"
  if (url.includes("/packages/bench/")) return "bench"
  if (url === "" || url.startsWith("node:")) return "node internals"
  return "other"
}

/** Self time per category and per function, per op. */
export const summarize = (profile: Profile, workload: string, ops: number): ProfileSummary => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  // the profiler's own work (stopping it, handing the profile over) is left out
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const inProfiler = (id: number): boolean => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      if (byId.get(at)!.callFrame.url === "node:inspector") return true
    }
    return false
  }
  const selfTime = new Map<number, number>()
  profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const categories = new Map<string, number>()
  const functions = new Map<string, number>()
  let busy = 0
  for (const [id, time] of selfTime) {
    const frame = byId.get(id)!.callFrame
    const category = categoryOf(frame)
    if (category === "idle" || inProfiler(id)) continue
    busy += time
    categories.set(category, (categories.get(category) ?? 0) + time)
    const file = frame.url.split("/").slice(-2).join("/")
    const name = `${frame.functionName || "(anonymous)"} (${file}:${frame.lineNumber + 1}) [${category}]`
    functions.set(name, (functions.get(name) ?? 0) + time)
  }
  const perOp = (time: number) => time / ops
  return {
    workload,
    ops,
    busy_us_per_op: perOp(busy),
    categories: [...categories].sort((a, b) => b[1] - a[1]).map(([name, time]) => ({
      name,
      us_per_op: perOp(time),
      share: busy === 0 ? 0 : time / busy
    })),
    top: [...functions].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name, time]) => ({
      name,
      us_per_op: perOp(time)
    }))
  }
}

/**
 * Runs `section` under the sampling profiler and returns the profile. With `BENCH_PROFILE_DIR` set, the
 * profile is also written there as `<label>.cpuprofile` (for Chrome's DevTools or speedscope).
 */
export const profiled = async (label: string, section: () => Promise<void>): Promise<Profile> => {
  const session = new inspector.Session()
  session.connect()
  try {
    await session.post("Profiler.enable")
    await session.post("Profiler.setSamplingInterval", { interval: 100 })
    await session.post("Profiler.start")
    await section()
    const { profile } = await session.post("Profiler.stop")
    const dir = process.env.BENCH_PROFILE_DIR
    if (dir !== undefined && dir !== "") {
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, `${label}.cpuprofile`), JSON.stringify(profile))
    }
    return profile as unknown as Profile
  } finally {
    session.disconnect()
  }
}

/** The summary as lines of text for the report. */
export const render = (summary: ProfileSummary): string =>
  [
    `profile of effect-etcd ${summary.workload} (${summary.ops} ops, main thread, self time): ${
      summary.busy_us_per_op.toFixed(0)
    } µs busy per op`,
    `  ${
      summary.categories.map((c) => `${c.name} ${c.us_per_op.toFixed(1)} µs (${(c.share * 100).toFixed(0)}%)`).join(
        ", "
      )
    }`,
    `  top functions (µs/op): ${summary.top.map((f) => `${f.name} ${f.us_per_op.toFixed(1)}`).join("; ")}`
  ].join("\n")
