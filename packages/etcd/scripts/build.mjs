// Builds the package in the current directory: dist/esm (ES modules), dist/cjs (CommonJS,
// marked by its own package.json) and dist/dts (declarations), all from src/ with tsc.
// Used by every publishable package of the workspace: `node ../etcd/scripts/build.mjs`.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const pkgDir = process.cwd()
const dist = path.join(pkgDir, "dist")
const work = path.join(pkgDir, ".build")
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")

const base = {
  extends: path.relative(work, path.resolve(import.meta.dirname, "../../../tsconfig.base.json")),
  compilerOptions: {
    rootDir: "../src",
    // the package is built on its own: imports of sibling packages resolve through node_modules
    paths: {},
    declarationMap: false,
    sourceMap: true
  },
  include: ["../src"]
}

const variants = {
  esm: { outDir: "../dist/esm", declaration: false },
  cjs: { outDir: "../dist/cjs", declaration: false, module: "CommonJS", moduleResolution: "Node10" },
  dts: { outDir: "../dist/dts", declaration: true, emitDeclarationOnly: true, sourceMap: false }
}

fs.rmSync(dist, { recursive: true, force: true })
fs.rmSync(work, { recursive: true, force: true })
fs.mkdirSync(work)
try {
  for (const [name, options] of Object.entries(variants)) {
    const file = path.join(work, `${name}.json`)
    fs.writeFileSync(
      file,
      JSON.stringify({ ...base, compilerOptions: { ...base.compilerOptions, ...options } }, null, 2)
    )
    execFileSync(process.execPath, [tsc, "-p", file], { stdio: "inherit" })
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true })
}
fs.writeFileSync(path.join(dist, "cjs", "package.json"), JSON.stringify({ type: "commonjs" }) + "\n")
console.log(`built ${path.basename(pkgDir)}: ${Object.keys(variants).map((v) => `dist/${v}`).join(", ")}`)
