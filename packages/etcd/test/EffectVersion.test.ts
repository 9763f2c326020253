/**
 * The check of Effect's major version that runs when effect-etcd is loaded
 * (internal/base/effectVersion.ts): it finds the version of the `effect` in use, and refuses any
 * other major than 3 with a message that says what to install.
 */
import { describe, expect, it } from "@effect/vitest"
import { createRequire } from "node:module"
import { loadedVersion, mismatch, supportedRange } from "../src/internal/base/effectVersion.js"

const require = createRequire(import.meta.url)
const effectPackage = require("effect/package.json") as { readonly version: string }
const ownPackage = require("../package.json") as { readonly peerDependencies: { readonly effect: string } }

describe("Effect's version at import", () => {
  it("reads the version of the effect package in use", () => {
    expect(loadedVersion()).toBe(effectPackage.version)
    expect(mismatch(loadedVersion())).toBeUndefined()
  })

  it("accepts every 3.x", () => {
    expect(mismatch("3.22.4")).toBeUndefined()
    expect(mismatch("3.99.0")).toBeUndefined()
  })

  it("refuses another major, naming the version found and the range to pin", () => {
    const message = mismatch("4.0.0")
    expect(message).toContain("effect-etcd needs Effect 3 (effect@^3.22.4)")
    expect(message).toContain("the effect package it loaded is 4.0.0")
    expect(message).toContain("npm install effect@^3 @effect/platform@^0.97 @effect/platform-node@^0.108")
    expect(mismatch("2.4.19")).toContain("the effect package it loaded is 2.4.19")
    expect(supportedRange).toBe(ownPackage.peerDependencies.effect)
  })

  it("refuses an effect that reports no version, as Effect 4 does not", () => {
    expect(mismatch(undefined)).toContain("it reports no 3.x version, as Effect 4 does not")
  })
})
