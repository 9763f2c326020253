// The HTML API reference of effect-etcd, @effect-etcd/testing and @effect-etcd/cluster: `pnpm apidocs` writes
// docs/api/index.html. One site, one entry per public module of each package; src/internal/ is left
// out, as the packages' exports maps leave it out. Any warning fails the build, so a broken {@link},
// or a public signature that names a type the reference does not show, is caught here.
// `pnpm check:apidocs` then opens the site in headless Chromium (scripts/check-apidocs.mjs).

/** @type {Partial<import("typedoc").TypeDocOptions>} */
export default {
  name: "effect-etcd",
  entryPointStrategy: "packages",
  entryPoints: ["packages/etcd", "packages/testing", "packages/cluster"],
  // in packages mode, these apply to each package's own conversion; each package's typedoc.json adds
  // the types its public signatures name but it does not export on purpose (intentionallyNotExported)
  packageOptions: {
    entryPoints: ["src/*.ts"],
    // index.ts only re-exports the modules as namespaces; globalSetup.ts is this workspace's vitest
    // global setup (vitest.shared.ts), not an API; docgen.json leaves out the same files
    exclude: ["src/index.ts", "src/internal/**", "src/globalSetup.ts"],
    tsconfig: "../../tsconfig.apidocs.json",
    // `pnpm check` type-checks the sources; TypeDoc only reads them
    skipErrorChecking: true,
    // members that the errors and services inherit from Effect's classes (pipe, Symbol.iterator...)
    // would make every error's page ~400 KB
    excludeExternals: true,
    // a checkout need not have a git remote (CI clones a bare copy), so no "defined in" source links
    disableSources: true,
    validation: { notExported: true, invalidLink: true, rewrittenLink: true, notDocumented: false }
  },
  // each module's header comment is its overview, as in docgen (see the plugin)
  plugin: ["./scripts/typedoc-module-overview.mjs"],
  out: "docs/api",
  readme: "none",
  treatWarningsAsErrors: true
}
