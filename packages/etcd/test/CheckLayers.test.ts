/**
 * `pnpm check:layers` (scripts/check-layers.mjs) fails where it must: run as CI runs it, on small
 * workspaces written here, with an upward import, a circle inside one layer, a file in no layer,
 * and only type imports going up (which pass). CI runs it on the workspace itself.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const workspace = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
const script = path.join(workspace, "scripts/check-layers.mjs")
const fixtures = fs.mkdtempSync(path.join(os.tmpdir(), "check-layers-"))
afterAll(() => fs.rmSync(fixtures, { recursive: true, force: true }))

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs the checker on `root`, as `pnpm check:layers` does. */
const run = (root: string): Promise<Run> =>
  new Promise((resolve) => {
    execFile(process.execPath, [script, "--root", root], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })
    })
  })

/** A workspace of one package, `packages/etcd`, whose `src/` holds `files` (path -> text). */
const fixture = (name: string, files: Record<string, string>): string => {
  const root = path.join(fixtures, name)
  for (const [file, text] of Object.entries(files)) {
    const full = path.join(root, "packages/etcd/src", file)
    fs.mkdirSync(path.dirname(full), { recursive: true })
    fs.writeFileSync(full, text)
  }
  return root
}

describe("check:layers", () => {
  it("fails on a value import that runs up a layer, and on the circle it closes, naming both files", async () => {
    const result = await run(fixture("upward", {
      "internal/base/printable.ts": `import { get } from "../../Kv.js"\nexport const show = () => get\n`,
      "Kv.ts": `import { show } from "./internal/base/printable.js"\nexport const get = () => show\n`
    }))
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(
      `upward import: packages/etcd/src/internal/base/printable.ts (layer "base") imports packages/etcd/src/Kv.ts ` +
        `(layer "public core", above it) as a value`
    )
    expect(result.stderr).toContain(
      "import circle: packages/etcd/src/Kv.ts -> packages/etcd/src/internal/base/printable.ts -> packages/etcd/src/Kv.ts"
    )
    expect(result.stderr).toContain("check:layers: 2 problem(s)")
  })

  it("fails on a circle inside one layer, where no import runs up", async () => {
    const result = await run(fixture("circle", {
      "Lock.ts": `export * from "./RwLock.js"\nexport const lock = 1\n`,
      "RwLock.ts": `import { lock } from "./Lock.js"\nexport const rwLock = lock\n`
    }))
    expect(result.code).toBe(1)
    expect(result.stderr).not.toContain("upward import")
    expect(result.stderr).toContain(
      "import circle: packages/etcd/src/Lock.ts -> packages/etcd/src/RwLock.ts -> packages/etcd/src/Lock.ts"
    )
  })

  it("fails on the fair queue importing the wire, which is below it but not on the public modules", async () => {
    const result = await run(fixture("recipes", {
      "internal/wire/kvCodec.ts": `export const decode = 1\n`,
      "internal/recipes/queue.ts": `import { decode } from "../wire/kvCodec.js"\nexport const queue = decode\n`
    }))
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(
      `forbidden import: packages/etcd/src/internal/recipes/queue.ts (layer "recipe support") imports ` +
        `packages/etcd/src/internal/wire/kvCodec.ts (layer "wire", which it must not use) as a value`
    )
  })

  it("fails on a file that no layer holds", async () => {
    const result = await run(fixture("unplaced", { "internal/misc.ts": `export const misc = 1\n` }))
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("packages/etcd/src/internal/misc.ts is in no layer of packages/etcd")
  })

  it("passes type-only imports up a layer, and prints the layers it checked", async () => {
    const result = await run(fixture("types", {
      "internal/base/printable.ts": [
        `import type { Got } from "../../Kv.js"`,
        `import { type Options } from "../../Kv.js"`,
        `export type { Got } from "../../Kv.js"`,
        `export const show = (options: Options): Got => options.got`
      ].join("\n"),
      "Kv.ts": [
        `import { show } from "./internal/base/printable.js"`,
        `export interface Got { readonly got: true }`,
        `export interface Options { readonly got: Got }`,
        `export const get = show`
      ].join("\n")
    }))
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("packages/etcd: 2 files, layers lowest first:")
    expect(result.stdout).toMatch(/\d+\. public core +Etcd\.ts Kv\.ts/)
  })
})
