/**
 * `pnpm bench:chart [RUN.json] [OUT.svg]`: draws the README's chart from the JSON of a run
 * (`pnpm bench --json RUN.json`). Without arguments it reads the newest of `results/*.json` (named by
 * the run's date: the run the README describes) and writes `docs/bench.svg` at the workspace's root.
 * Relative paths are taken from the directory the command was started in.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { type ChartInput, ratios, svg } from "./chart.js"

const packageDir = path.resolve(import.meta.dirname, "..")
const startDir = process.env.INIT_CWD ?? process.cwd()
const results = path.join(packageDir, "results")
const newest = fs.readdirSync(results).filter((file) => file.endsWith(".json")).sort().at(-1)
const [
  input = path.join(results, newest ?? "(none).json"),
  output = path.join(packageDir, "..", "..", "docs", "bench.svg")
] = process.argv.slice(2).map((file) => path.resolve(startDir, file))

const rows: ReadonlyArray<ChartInput> = JSON.parse(fs.readFileSync(input, "utf8"))
const data = ratios(rows)
if (data.length === 0) {
  console.error(`bench:chart: ${input} has no workload that both effect-etcd and etcd3 report`)
  process.exit(1)
}
const run = path.basename(input, ".json")
fs.writeFileSync(output, svg(data, `${run}: medians of the bench's rounds, one local etcd (packages/bench)`))
console.log(`bench:chart: ${data.length} workloads from ${input} drawn into ${output}`)
