/** The quick benchmark end to end, so that it cannot rot. It asserts shape, never speed. */
import { expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { clients, workloads } from "../src/workloads.js"

it("pnpm bench --quick reports every client on every workload, with finite figures", () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bench-")), "quick.json")
  execFileSync(process.execPath, ["--import", "tsx", "src/main.ts", "--quick", "--json", out], {
    cwd: path.resolve(import.meta.dirname, ".."),
    stdio: "pipe",
    timeout: 240_000
  })
  const rows = JSON.parse(fs.readFileSync(out, "utf8")) as Array<Record<string, unknown>>
  const seen = rows.map((row) => `${row.workload} ${row.client}`).sort()
  expect(seen).toEqual(workloads.flatMap((w) => clients.map((c) => `${w.name} ${c}`)).sort())
  for (const row of rows) {
    for (const figure of ["ops_per_s", "cpu_us_per_op", "p50_ms", "p99_ms", "rss_mb"]) {
      expect(Number.isFinite(row[figure]), `${row.workload} ${row.client} ${figure}`).toBe(true)
    }
    expect(row.ops_per_s as number).toBeGreaterThan(0)
  }
}, 300_000)
