import { describe, expect, it } from "vitest"
import { type ChartInput, ratios, ratioText, svg } from "../src/chart.js"

const row = (client: string, workload: string, ops_per_s: number, cpu_us_per_op: number): ChartInput => ({
  client,
  workload,
  ops_per_s,
  cpu_us_per_op
})

// figures of the run of 2026-12-03 (packages/bench/results), and rows the chart must leave out
const rows: ReadonlyArray<ChartInput> = [
  row("effect-etcd", "put-1", 1117, 749.8),
  row("etcd3", "put-1", 952, 966.0),
  row("raw-grpc", "put-1", 1002, 986.8),
  row("effect-etcd", "get-128", 25759, 41.6),
  row("etcd3", "get-128", 4824, 206.2),
  row("effect-etcd", "only-ours", 10, 10),
  { client: "effect-etcd", workload: "watchers-10k" },
  { client: "etcd3", workload: "watchers-10k" }
]

describe("ratios", () => {
  it("divides effect-etcd's figures by etcd3's, per workload, in the rows' order", () => {
    const result = ratios(rows)
    expect(result.map((ratio) => ratio.workload)).toEqual(["put-1", "get-128"])
    expect(result.map((ratio) => [ratioText(ratio.ops), ratioText(ratio.cpu)])).toEqual([
      ["1.17×", "0.78×"],
      ["5.34×", "0.20×"]
    ])
  })

  it("leaves out a workload whose etcd3 row has no finite, positive figures", () => {
    expect(ratios([row("effect-etcd", "put-1", 1117, 749.8), row("etcd3", "put-1", 0, 966)])).toEqual([])
    expect(ratios([row("effect-etcd", "put-1", 1117, 749.8), row("etcd3", "put-1", 952, Number.NaN)])).toEqual([])
  })
})

describe("svg", () => {
  const chart = svg(ratios(rows), "run <1> & \"2\"")

  it("draws two bars per workload", () => {
    expect(chart.match(/<rect class="bar"/g)).toHaveLength(4)
  })

  it("labels each workload and prints each bar's ratio", () => {
    expect(chart).toContain(">put-1</text>")
    expect(chart).toContain(">get-128</text>")
    const printed = [...chart.matchAll(/<text class="ratio"[^>]*>([^<]*)<\/text>/g)].map((match) => match[1])
    expect(printed).toEqual(["1.17×", "0.78×", "5.34×", "0.20×"])
  })

  it("scales the bars from 0 to the next whole ratio, with a tick per whole ratio", () => {
    const widths = [...chart.matchAll(/<rect class="bar" x="170" y="\d+" width="([\d.]+)"/g)].map((match) =>
      Number(match[1])
    )
    // 530 px of plot for 0..6×: 5.34× is 5.34/6 of it
    expect(widths[2]).toBeCloseTo((5.34 / 6) * 530, 0)
    expect(widths[0] / widths[2]).toBeCloseTo(1117 / 952 / (25759 / 4824), 2)
    expect([...chart.matchAll(/>(\d)×<\/text>/g)].map((match) => match[1])).toEqual(["0", "1", "2", "3", "4", "5", "6"])
  })

  it("escapes the caption", () => {
    expect(chart).toContain("run &lt;1&gt; &amp; &quot;2&quot;")
    expect(chart.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true)
  })
})
