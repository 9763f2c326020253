// `pnpm check:snippets`: type-checks every ```ts block of README.md, packages/*/README.md and the
// guide's pages (docs/*.md), each as a module of its own, with `tsc --noEmit --strict` as a user would compile it.
// `effect-etcd`, `@effect-etcd/testing` and `@effect-etcd/cluster` resolve to the BUILT declarations
// (packages/*/dist/esm, so run `pnpm build` first); every other import resolves through the
// workspace's node_modules. Errors are reported at the README's own file and line.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const work = path.join(root, "node_modules", ".cache", "check-snippets")
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")

const readmes = [
  "README.md",
  ...fs.readdirSync(path.join(root, "packages")).sort().map((dir) => path.join("packages", dir, "README.md")),
  ...fs.readdirSync(path.join(root, "docs")).filter((file) => file.endsWith(".md")).sort().map((file) =>
    path.join("docs", file)
  )
].filter((file) => fs.existsSync(path.join(root, file)))

for (const pkg of ["etcd", "testing", "cluster"]) {
  if (!fs.existsSync(path.join(root, "packages", pkg, "dist", "esm", "index.d.ts"))) {
    console.error(`check-snippets: packages/${pkg}/dist/esm is missing: run pnpm build first`)
    process.exit(1)
  }
}

/** Every ```ts block of a markdown file, with the line (1-based) of its first line of code. */
const blocksOf = (file) => {
  const lines = fs.readFileSync(path.join(root, file), "utf8").split("\n")
  const blocks = []
  let current
  lines.forEach((line, index) => {
    if (current === undefined) {
      if (/^```(ts|typescript)\s*$/.test(line)) current = { file, line: index + 2, code: [] }
    } else if (/^```\s*$/.test(line)) {
      blocks.push({ ...current, code: current.code.join("\n") + "\n" })
      current = undefined
    } else {
      current.code.push(line)
    }
  })
  if (current !== undefined) throw new Error(`${file}:${current.line - 1}: a code block is never closed`)
  return blocks
}

const snippets = readmes.flatMap(blocksOf)
if (snippets.length === 0) {
  console.error("check-snippets: no ts block found")
  process.exit(1)
}

// A snippet may import only what its README's `npm install` lines install (and Node's own
// modules): a new user copies the install line, then the snippet. A page of the guide (docs/)
// also has what the guide's install line installs (docs/getting-started.md), which its reader
// ran first.
/** The packages named by the `npm install` lines of a markdown file, versions stripped. */
const installedBy = (file) =>
  new Set(
    fs.readFileSync(path.join(root, file), "utf8").split("\n")
      .flatMap((line) => line.replace(/#.*$/, "").split(/&&|;/))
      .map((command) => command.trim().split(/\s+/))
      .filter((words) => words[0] === "npm" && (words[1] === "install" || words[1] === "i"))
      .flatMap((words) => words.slice(2).filter((word) => !word.startsWith("-")))
      .map((spec) => spec.replace(/(?<=.)@.*$/, ""))
  )
const packageOf = (specifier) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/")
const guideInstall = "docs/getting-started.md"
const installedFor = (file) =>
  file.startsWith("docs/") && fs.existsSync(path.join(root, guideInstall))
    ? new Set([...installedBy(file), ...installedBy(guideInstall)])
    : installedBy(file)
const missing = []
for (const snippet of snippets) {
  const installed = installedFor(snippet.file)
  snippet.code.split("\n").forEach((line, index) => {
    for (const [, specifier] of line.matchAll(/(?:from|import)\s+"([^"]+)"/g)) {
      if (specifier.startsWith(".") || specifier.startsWith("node:") || installed.has(packageOf(specifier))) continue
      missing.push(
        `${snippet.file}:${snippet.line + index}: imports ${specifier}, but no npm install line of ${snippet.file} ` +
          `installs ${packageOf(specifier)}${snippet.file.startsWith("docs/") ? ` (nor does ${guideInstall})` : ""}`
      )
    }
  })
}
if (missing.length > 0) {
  console.error(missing.join("\n"))
  console.error("check-snippets: a snippet imports a package its page does not tell the reader to install")
  process.exit(1)
}

fs.rmSync(work, { recursive: true, force: true })
fs.mkdirSync(work, { recursive: true })
const sources = new Map()
snippets.forEach((snippet, index) => {
  const name = `${String(index).padStart(2, "0")}-${snippet.file.replaceAll(/[/.]/g, "_")}-L${snippet.line}.ts`
  fs.writeFileSync(path.join(work, name), snippet.code)
  sources.set(name, snippet)
})
fs.writeFileSync(path.join(work, "package.json"), JSON.stringify({ type: "module", private: true }))
const dts = (pkg, file) => path.join(root, "packages", pkg, "dist", "esm", file)
fs.writeFileSync(
  path.join(work, "tsconfig.json"),
  JSON.stringify(
    {
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "ES2022",
        lib: ["ES2022"],
        types: ["node"],
        typeRoots: [path.join(root, "node_modules", "@types")],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        moduleDetection: "force",
        skipLibCheck: true,
        paths: {
          "effect-etcd": [dts("etcd", "index.d.ts")],
          "effect-etcd/*": [dts("etcd", "*.d.ts")],
          "@effect-etcd/testing": [dts("testing", "index.d.ts")],
          "@effect-etcd/testing/*": [dts("testing", "*.d.ts")],
          "@effect-etcd/cluster": [dts("cluster", "index.d.ts")],
          "@effect-etcd/cluster/*": [dts("cluster", "*.d.ts")]
        }
      },
      files: [...sources.keys()]
    },
    null,
    2
  )
)

const result = spawnSync(process.execPath, [tsc, "-p", work, "--pretty", "false"], { encoding: "utf8" })
// tsc reports `file(line,col): error TSxxxx: text`; point at the README's line instead
const output = (result.stdout + result.stderr).replace(
  /^(\S+?\.ts)\((\d+),(\d+)\)/gm,
  (whole, file, line, column) => {
    const snippet = sources.get(path.basename(file))
    return snippet === undefined ? whole : `${snippet.file}:${snippet.line + Number(line) - 1}:${column}`
  }
)
if (output.trim().length > 0) console.log(output.trimEnd())
const counts = readmes.filter((file) => snippets.some((s) => s.file === file)).map((file) => `${file} ${snippets.filter((s) => s.file === file).length}`).join(", ")
if (result.status !== 0) {
  console.error(`check-snippets: the ts blocks of the READMEs and docs/ do not compile (${counts})`)
  process.exit(1)
}
console.log(`check-snippets: ${snippets.length} ts blocks compile on their own (${counts})`)
