/**
 * effect-etcd runs on Effect 3 only. The package's entry points (`index.ts`, `Etcd.ts`) import this
 * module first, so that a program whose `effect` is another major version stops as soon as it loads
 * effect-etcd, with a message that says what to do. An unpinned `npm install effect` next to
 * effect-etcd installs Effect 4 with only a peer-dependency warning; without this check the first
 * sign is an error deep inside Effect (or inside effect-etcd's declarations, for tsc).
 *
 * The version is the one Effect 3 stamps on every effect (the `_V` of an effect's variance, which
 * Effect itself compares between runtimes), read from `effect/Effect`: a module every major version
 * of Effect has, so that this module loads whichever version is installed. Reading `effect/package.json`
 * instead would need a JSON import in the ES module build and `require` in the CommonJS one.
 *
 * It runs only where the program gets that far: node resolves all the imports of an ES module
 * program before it runs any of its code, so when a module that Effect 4 no longer has is imported
 * (`effect/Either`), that resolution error comes first. A CommonJS program runs this check before it
 * requires anything else of effect-etcd.
 */
import * as Effect from "effect/Effect"

/** The range of Effect that effect-etcd supports: its peer dependency. */
export const supportedRange = "^3.22.4"

/** The version of the `effect` package that is loaded, or `undefined` when it does not say (Effect 4 does not). */
export const loadedVersion = (): string | undefined => {
  // every step may be missing under another major version: none of them may throw
  const variance = (Effect.void as unknown as Record<symbol, { readonly _V?: unknown } | undefined> | undefined)?.[
    Effect.EffectTypeId
  ]
  return typeof variance?._V === "string" ? variance._V : undefined
}

/** What is wrong with the loaded version of Effect, or `undefined` when it is a 3.x. */
export const mismatch = (version: string | undefined): string | undefined =>
  version !== undefined && version.split(".")[0] === "3"
    ? undefined
    : `effect-etcd needs Effect 3 (effect@${supportedRange}), but the effect package it loaded is ${
      version ?? "not Effect 3 (it reports no 3.x version, as Effect 4 does not)"
    }. Effect 4 is not supported yet: pin Effect 3 with ` +
      `npm install effect@^3 @effect/platform@^0.97 @effect/platform-node@^0.108 (npm ls effect shows what is installed).`

const problem = mismatch(loadedVersion())
if (problem !== undefined) throw new Error(problem)
