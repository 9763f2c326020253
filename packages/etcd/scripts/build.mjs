// Builds the package in the current directory from src/ with tsc, into two trees that each hold
// their JavaScript next to its declarations:
//   dist/esm  ES modules and .d.ts read as ESM (the package's "type": "module")
//   dist/cjs  CommonJS and .d.ts read as CommonJS (dist/cjs/package.json says "type": "commonjs")
// Two sets of identical declarations, one per format, are what lets a CommonJS consumer compiled with
// `--module node16` import the package: with ESM-only declarations tsc stops with TS1479.
// Source maps carry the sources (`sourcesContent`), since src/ is not shipped.
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
    sourceMap: true,
    inlineSources: true
  },
  include: ["../src"]
}

const variants = {
  esm: { outDir: "../dist/esm", declaration: true },
  cjs: { outDir: "../dist/cjs", declaration: false, module: "CommonJS", moduleResolution: "Node10" }
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

// the declarations are the same for both formats: copy them; the package.json decides how they are read
const copyDeclarations = (from, to) => {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name)
    const target = path.join(to, entry.name)
    if (entry.isDirectory()) copyDeclarations(source, target)
    else if (entry.name.endsWith(".d.ts")) fs.copyFileSync(source, target)
  }
}
copyDeclarations(path.join(dist, "esm"), path.join(dist, "cjs"))
fs.writeFileSync(path.join(dist, "cjs", "package.json"), JSON.stringify({ type: "commonjs" }) + "\n")
console.log(`built ${path.basename(pkgDir)}: dist/esm (ESM + .d.ts), dist/cjs (CommonJS + .d.ts)`)
