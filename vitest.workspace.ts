/**
 * The workspace's test projects: one per package, each with its own `vitest.config.ts`.
 *
 * vitest 3.2 reads them from `test.projects` in the root `vitest.config.ts`, which imports this
 * list. Because `test.projects` is set, vitest never loads this file as a workspace file of its
 * own (that form is deprecated and would print a warning); it is only the place the list lives.
 */
export default ["packages/*/vitest.config.ts"]
