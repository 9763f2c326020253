/**
 * The platform's `FileSystem` service, for the few operations that read or write files (TLS
 * material, snapshots). Its module is loaded when one of them first runs: it imports Effect's
 * `Schema`, which brings fast-check with it, about 4.5 MB of live heap that a client reading no
 * files would otherwise carry for its whole life.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"

/**
 * The `FileSystem` from the context, as `yield* FileSystem.FileSystem` gives it.
 *
 * @internal
 */
export const fileSystem: Effect.Effect<FileSystem.FileSystem, never, FileSystem.FileSystem> = Effect.flatMap(
  Effect.promise(() => import("@effect/platform/FileSystem")),
  (module) => module.FileSystem
)

/**
 * The `FileSystem` of the context, if one is provided: for a layer that reads files only
 * when its options name some, and so requires no `FileSystem` otherwise.
 *
 * @internal
 */
export const fileSystemOption: Effect.Effect<Option.Option<FileSystem.FileSystem>> = Effect.flatMap(
  Effect.promise(() => import("@effect/platform/FileSystem")),
  (module) => Effect.serviceOption(module.FileSystem)
)
