/**
 * `pnpm check:layers`: the imports of every `packages/*\/src/**\/*.ts` run down the layers, and no
 * value import closes a circle.
 *
 * Each package with a layer table below has its files in ordered layers, lowest first. A value
 * import may stay in its layer or go down; it fails when it goes up. Over every package, a value
 * import that closes a circle (A imports B imports ... A) fails too, whatever the layers.
 *
 * Only value imports count: `import type`, `export type` and imports whose specifiers are all
 * `type` are left out, since they vanish from the JavaScript (an internal module naming the
 * types of the public module it implements is Effect's own convention). A side-effect import
 * (`import "./x.js"`), `export * from` and a dynamic `import("./x.js")` count as values.
 * Imports of other packages (`effect`, `effect-etcd` from the testing package) are not followed.
 *
 * The statements are read with the TypeScript compiler's parser, not with patterns.
 *
 * Usage: node scripts/check-layers.mjs [--root DIR]   (DIR holds packages/*\/src; the default is
 * the workspace). Exit code 0 when everything holds, 1 with one line per problem otherwise.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

/**
 * The layers of each package, lowest first. A layer is a list of paths relative to the package's
 * `src/`: a name ending in `/` is a folder and holds everything under it, anything else is one file.
 * `forbids` names lower layers a layer may not import from either.
 */
export const layerTables = {
  etcd: [
    { name: "base", paths: ["internal/base/"], holds: "printing, scopes, files, endpoints: nothing of ours" },
    { name: "error internals", paths: ["internal/errors/"], holds: "what EtcdError.ts is built from" },
    { name: "errors", paths: ["EtcdError.ts"], holds: "the public errors" },
    { name: "data internals", paths: ["internal/data/"], holds: "bytes and int64 conversions, input checks" },
    {
      name: "data",
      paths: ["KeyValue.ts", "KeyRange.ts", "Compare.ts", "Op.ts"],
      holds: "the public data modules"
    },
    { name: "wire", paths: ["internal/wire/"], holds: "protobuf, gRPC frames, the codecs" },
    { name: "transport", paths: ["internal/transport/"], holds: "HTTP/2 and grpc-js calls, members, TLS, retries" },
    { name: "streams", paths: ["internal/streams/"], holds: "the watch and keepalive hubs, the read batcher" },
    { name: "rpc", paths: ["internal/rpc/"], holds: "the protocol-level services the public core calls" },
    { name: "memory", paths: ["internal/memory/"], holds: "the in-memory server" },
    {
      name: "public core",
      paths: [
        "Etcd.ts",
        "Kv.ts",
        "Txn.ts",
        "Lease.ts",
        "Watch.ts",
        "Auth.ts",
        "Cluster.ts",
        "Maintenance.ts",
        "EtcdMemory.ts",
        "EtcdMetrics.ts"
      ],
      holds: "the client and its services"
    },
    { name: "session", paths: ["Session.ts"], holds: "a lease kept alive, shared by the recipes" },
    {
      name: "recipe support",
      paths: ["internal/recipes/"],
      holds: "the fair queue, on the public modules",
      // written on the public modules only, as Go's clientv3/concurrency is
      forbids: ["wire", "transport", "streams", "rpc", "memory"]
    },
    {
      name: "public recipes",
      paths: ["Lock.ts", "RwLock.ts", "Election.ts", "Stm.ts", "Mirror.ts", "Keyspace.ts", "EtcdConfig.ts"],
      holds: "locks, elections, STM, mirrors, typed keyspaces, configuration"
    },
    { name: "index", paths: ["index.ts"], holds: "the package's namespaces" }
  ],
  testing: [
    { name: "errors", paths: ["EtcdServerError.ts"], holds: "the error of the servers and proxies" },
    { name: "internal", paths: ["internal/"], holds: "binaries, TLS material, process states, the watchdog, the system clock" },
    { name: "ports", paths: ["Ports.ts"], holds: "free loopback ports, public, which the servers and proxies pick theirs from" },
    {
      name: "public",
      paths: ["EtcdServer.ts", "EtcdProxy.ts", "globalSetup.ts"],
      holds: "servers, proxies, vitest's global setup"
    },
    { name: "index", paths: ["index.ts"], holds: "the package's namespaces" }
  ]
}

/** The `.ts` files under `dir`, sorted. */
const walk = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return walk(full)
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : []
  }).sort()

/** The module specifiers a file imports as values. */
export const valueImports = (fileName, text) => {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const specifiers = []
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause
      const typeOnly = clause !== undefined && (clause.isTypeOnly || (
        clause.name === undefined && clause.namedBindings !== undefined &&
        ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 &&
        clause.namedBindings.elements.every((element) => element.isTypeOnly)
      ))
      if (!typeOnly) specifiers.push(node.moduleSpecifier.text)
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.exportClause
      const typeOnly = node.isTypeOnly || (
        clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 &&
        clause.elements.every((element) => element.isTypeOnly)
      )
      if (!typeOnly) specifiers.push(node.moduleSpecifier.text)
    } else if (
      ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length === 1 && ts.isStringLiteralLike(node.arguments[0])
    ) {
      specifiers.push(node.arguments[0].text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return specifiers
}

/** The file a relative specifier names (`./x.js` is `./x.ts`), or undefined for another package's. */
const resolve = (from, specifier) => {
  if (!specifier.startsWith(".")) return undefined
  const target = path.resolve(path.dirname(from), specifier)
  for (const candidate of [target.replace(/\.js$/, ".ts"), `${target}.ts`, path.join(target, "index.ts")]) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate
  }
  return undefined
}

/** The index of the layer that holds `relative` (a path under `src/`), or -1. */
const layerOf = (table, relative) =>
  table.findIndex((layer) =>
    layer.paths.some((entry) => entry.endsWith("/") ? relative.startsWith(entry) : relative === entry)
  )

/** Tarjan's strongly connected components of `graph` (file -> files it imports as values). */
const components = (graph) => {
  let next = 0
  const index = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const found = []
  const connect = (node) => {
    index.set(node, next)
    low.set(node, next)
    next++
    stack.push(node)
    onStack.add(node)
    for (const target of graph.get(node) ?? []) {
      if (!index.has(target)) {
        connect(target)
        low.set(node, Math.min(low.get(node), low.get(target)))
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node), index.get(target)))
      }
    }
    if (low.get(node) === index.get(node)) {
      const component = []
      let member
      do {
        member = stack.pop()
        onStack.delete(member)
        component.push(member)
      } while (member !== node)
      found.push(component)
    }
  }
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) connect(node)
  return found
}

/** One circle through `start`, inside `members`: the shortest, found breadth first. */
const circleFrom = (graph, start, members) => {
  const previous = new Map([[start, undefined]])
  const queue = [start]
  while (queue.length > 0) {
    const node = queue.shift()
    for (const target of [...(graph.get(node) ?? [])].sort()) {
      if (!members.has(target)) continue
      if (target === start) {
        const circle = [start]
        for (let at = node; at !== start; at = previous.get(at)) circle.splice(1, 0, at)
        return [...circle, start]
      }
      if (!previous.has(target)) {
        previous.set(target, node)
        queue.push(target)
      }
    }
  }
  return [start, start]
}

/**
 * Checks the packages under `root`. Returns the problems (empty when everything holds) and what
 * was checked, for the report.
 */
export const checkLayers = (root, tables = layerTables) => {
  const packagesDir = path.join(root, "packages")
  const problems = []
  const checked = []
  const graph = new Map()
  const display = (file) => path.relative(root, file)
  for (const name of fs.readdirSync(packagesDir).sort()) {
    const srcDir = path.join(packagesDir, name, "src")
    if (!fs.existsSync(srcDir)) continue
    const table = tables[name]
    const files = walk(srcDir)
    checked.push({ name, table, files: files.length })
    for (const file of files) {
      const relative = path.relative(srcDir, file).split(path.sep).join("/")
      const layer = table ? layerOf(table, relative) : -1
      if (table && layer === -1) {
        problems.push(`${display(file)} is in no layer of packages/${name}: add it to the table in scripts/check-layers.mjs`)
      }
      const targets = new Set()
      for (const specifier of valueImports(file, fs.readFileSync(file, "utf8"))) {
        const target = resolve(file, specifier)
        if (target === undefined) continue
        targets.add(target)
        if (!table || layer === -1) continue
        const targetLayer = layerOf(table, path.relative(srcDir, target).split(path.sep).join("/"))
        if (targetLayer > layer) {
          problems.push(
            `upward import: ${display(file)} (layer "${table[layer].name}") imports ${display(target)} ` +
              `(layer "${table[targetLayer].name}", above it) as a value`
          )
        } else if (targetLayer !== -1 && table[layer].forbids?.includes(table[targetLayer].name)) {
          problems.push(
            `forbidden import: ${display(file)} (layer "${table[layer].name}") imports ${display(target)} ` +
              `(layer "${table[targetLayer].name}", which it must not use) as a value`
          )
        }
      }
      graph.set(file, targets)
    }
  }
  for (const component of components(graph)) {
    const members = new Set(component)
    const selfLoop = component.length === 1 && graph.get(component[0])?.has(component[0])
    if (component.length === 1 && !selfLoop) continue
    const start = [...component].sort()[0]
    problems.push(`import circle: ${circleFrom(graph, start, members).map(display).join(" -> ")}`)
  }
  return { problems, checked }
}

const main = () => {
  const rootAt = process.argv.indexOf("--root")
  const root = rootAt === -1
    ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
    : path.resolve(process.argv[rootAt + 1])
  const { checked, problems } = checkLayers(root)
  const out = (line) => process.stdout.write(`${line}\n`)
  for (const { files, name, table } of checked) {
    if (!table) {
      out(`packages/${name}: ${files} files, no layer table: import circles only`)
      continue
    }
    out(`packages/${name}: ${files} files, layers lowest first:`)
    const width = Math.max(...table.map((layer) => layer.name.length))
    table.forEach((layer, i) => {
      const forbids = layer.forbids ? `; not from ${layer.forbids.join(", ")}` : ""
      out(`  ${String(i + 1).padStart(2)}. ${layer.name.padEnd(width)}  ${layer.paths.join(" ")}  (${layer.holds}${forbids})`)
    })
  }
  if (problems.length > 0) {
    for (const problem of problems) process.stderr.write(`check:layers: ${problem}\n`)
    process.stderr.write(`check:layers: ${problems.length} problem(s)\n`)
    process.exit(1)
  }
  out("check:layers: every value import runs down a layer or stays in its own, and none closes a circle")
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
