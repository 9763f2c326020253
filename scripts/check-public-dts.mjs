// `pnpm check:public-dts`: no public declaration file of effect-etcd, @effect-etcd/testing or @effect-etcd/cluster
// names a module under `internal/`. The packages' `exports` map `./internal/*` to null, so a
// type a public `.d.ts` takes from there is one a user can see in an editor but never import
// (issue #26, part 6). A public declaration file is any `dist/{esm,cjs}/**/*.d.ts` outside
// `dist/*/internal/`; each module specifier in it (`from "..."`, `import("...")`,
// `/// <reference path="..." />`) that has an `internal` path segment is reported at its file
// and line. Reads the BUILT packages: run `pnpm build` first.
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const packages = ["etcd", "testing", "cluster"]

/** Every `.d.ts` under `dir`, the folders named `internal` left out. */
const publicDeclarations = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "internal" ? [] : publicDeclarations(file)
    return entry.name.endsWith(".d.ts") ? [file] : []
  })

const specifiers = /\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|<reference\s+path\s*=\s*["']([^"']+)["']/g
const namesInternal = (specifier) => specifier.split("/").includes("internal")

const problems = []
let checked = 0
for (const pkg of packages) {
  for (const format of ["esm", "cjs"]) {
    const dist = path.join(root, "packages", pkg, "dist", format)
    if (!fs.existsSync(path.join(dist, "index.d.ts"))) {
      console.error(`check-public-dts: ${path.relative(root, dist)}/index.d.ts is missing: run pnpm build first`)
      process.exit(1)
    }
    for (const file of publicDeclarations(dist)) {
      checked++
      const lines = fs.readFileSync(file, "utf8").split("\n")
      lines.forEach((line, index) => {
        for (const match of line.matchAll(specifiers)) {
          const specifier = match[1] ?? match[2] ?? match[3]
          if (namesInternal(specifier)) {
            problems.push(`${path.relative(root, file)}:${index + 1}: names ${JSON.stringify(specifier)}`)
          }
        }
      })
    }
  }
}

if (problems.length > 0) {
  console.error(`check-public-dts: ${problems.length} reference(s) to internal modules in public declarations:`)
  for (const problem of problems) console.error(`  ${problem}`)
  console.error("Give such a type a home in a public module (internal code may import its type from there).")
  process.exit(1)
}
console.log(`check-public-dts: ${checked} public declaration files of ${packages.length} packages name no internal module`)
