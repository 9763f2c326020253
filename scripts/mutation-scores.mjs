/**
 * The second half of `pnpm mutate`: reads Stryker's JSON report (reports/mutation/mutation.json)
 * and prints the mutation score of each module, then fails when one of them is under the bar
 * (Stryker's own `thresholds.break` applies to all the mutated files together only).
 *
 * The score is Stryker's: killed and timed out mutants over every mutant that is neither
 * ignored nor a compile error (so surviving and uncovered mutants count against it).
 */
import * as fs from "node:fs"
import * as path from "node:path"

const bar = 80
const print = (line) => process.stdout.write(`${line}\n`)
const report = path.resolve(process.argv[2] ?? "reports/mutation/mutation.json")

if (!fs.existsSync(report)) {
  process.stderr.write(`no mutation report at ${report}: run \`pnpm mutate\` (stryker run) first\n`)
  process.exit(1)
}

const { files } = JSON.parse(fs.readFileSync(report, "utf8"))
const rows = []
for (const [file, { mutants }] of Object.entries(files)) {
  const count = (...statuses) => mutants.filter((mutant) => statuses.includes(mutant.status)).length
  const killed = count("Killed", "Timeout")
  const survived = count("Survived")
  const noCoverage = count("NoCoverage")
  const valid = killed + survived + noCoverage
  const score = valid === 0 ? 100 : (100 * killed) / valid
  rows.push({ module: file.replace(/^.*packages\/etcd\/src\//, ""), score, killed, survived, noCoverage })
}
rows.sort((a, b) => a.module.localeCompare(b.module))

const width = Math.max(...rows.map((row) => row.module.length), "module".length)
print(`${"module".padEnd(width)}  score    killed  survived  no coverage`)
for (const row of rows) {
  print(
    `${row.module.padEnd(width)}  ${row.score.toFixed(2).padStart(6)}%  ${String(row.killed).padStart(6)}  ${
      String(row.survived).padStart(8)
    }  ${String(row.noCoverage).padStart(11)}`
  )
}
const under = rows.filter((row) => row.score < bar)
if (under.length > 0) {
  process.stderr.write(`under the ${bar}% bar: ${under.map((row) => row.module).join(", ")}\n`)
  process.exit(1)
}
print(`every module at or above ${bar}%`)
