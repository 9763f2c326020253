/**
 * Real etcd servers for tests, as Effect layers: one member or a 3-member cluster, with
 * TLS (certificates made with openssl when the server starts) and auth when asked,
 * on free loopback ports, data under `/dev/shm`. Everything is stopped and removed
 * when the layer's scope closes, also when a test fails; and by a watchdog when the
 * program is killed before that.
 *
 * @example
 * ```ts
 * import { EtcdServer } from "@effect-etcd/testing"
 * import { layer } from "@effect/vitest"
 * import { Effect } from "effect"
 *
 * layer(EtcdServer.layer({ members: 3 }), { excludeTestServices: true })("my suite", (it) => {
 *   it.effect("survives a member restart", () =>
 *     Effect.gen(function*() {
 *       const server = yield* EtcdServer.EtcdServer
 *       yield* server.restart(0)
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import { Etcd, type EtcdError } from "effect-etcd"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { EtcdServerError } from "./EtcdServerError.js"
import { findBinary } from "./internal/binaries.js"
import { awaitState } from "./internal/processState.js"
import { onSystemClock } from "./internal/systemClock.js"
import { makeTlsMaterial } from "./internal/tls.js"
import { guard } from "./internal/watchdog.js"
import { freePorts } from "./Ports.js"

/**
 * PEM text and file paths of the test CA, the server's and a client's certificate and
 * key, and an unrelated CA for negative tests.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsMaterial {
  readonly ca: string
  readonly caFile: string
  readonly serverCert: string
  readonly serverCertFile: string
  readonly serverKey: string
  readonly serverKeyFile: string
  readonly clientCert: string
  readonly clientCertFile: string
  readonly clientKey: string
  readonly clientKeyFile: string
  /** A CA that signed nothing here: a client trusting it must fail the handshake. */
  readonly wrongCa: string
  readonly wrongCaFile: string
}

export {
  /**
   * Starting or talking to a test etcd failed; the message says why, with the member's
   * last log lines where they help.
   *
   * @since 0.1.0
   * @category errors
   */
  EtcdServerError
} from "./EtcdServerError.js"

/**
 * One member of the cluster.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemberInfo {
  readonly name: string
  /** The client URL, `http://127.0.0.1:<port>` (`https://` with TLS). */
  readonly clientUrl: string
  readonly peerUrl: string
  /** Plain-HTTP URL serving `/health` and `/metrics`, even with TLS. */
  readonly metricsUrl: string
  readonly dataDir: string
}

/**
 * A running test cluster and the controls fault tests need.
 *
 * @since 0.1.0
 * @category models
 */
export interface EtcdServer {
  /** The members' client URLs. */
  readonly endpoints: ReadonlyArray<string>
  readonly members: ReadonlyArray<MemberInfo>
  readonly tls: Option.Option<TlsMaterial>
  readonly auth: Option.Option<{ readonly rootUser: "root"; readonly rootPassword: Redacted.Redacted<string> }>
  /** The PID of a running member, if it runs. */
  readonly pid: (member: number) => Effect.Effect<Option.Option<number>>
  /** Stops a member (SIGKILL by default); its data dir is kept. */
  readonly kill: (member: number, signal?: "SIGKILL" | "SIGTERM") => Effect.Effect<void>
  /** Starts a stopped member on the same ports and data dir, and waits until it is healthy. */
  readonly start: (member: number) => Effect.Effect<void, EtcdServerError>
  /** `kill` then `start`. */
  readonly restart: (member: number) => Effect.Effect<void, EtcdServerError>
  /**
   * Freezes a running member with SIGSTOP, and returns once the system reports every thread
   * of it stopped (the states under `/proc/<pid>/task`), so that the calls a test sends next
   * find it frozen. Dies when the member is not running.
   */
  readonly pause: (member: number) => Effect.Effect<void>
  /** Thaws a member with SIGCONT, and returns once it runs again; a member not running is left alone. */
  readonly resume: (member: number) => Effect.Effect<void>
  /** The text of a member's `/metrics`. */
  readonly metrics: (member: number) => Effect.Effect<string, EtcdServerError>
  /** The sum of the samples of one metric, e.g. `etcd_debugging_mvcc_watcher_total`. */
  readonly metric: (member: number, name: string) => Effect.Effect<number, EtcdServerError>
  /**
   * The index of a running member that follows a leader and is not the leader itself,
   * waiting (up to 30 s) for the cluster to have one: the member to kill in a test that a
   * write gets through the loss of a member. Killing the leader is another test: a write in
   * flight then may or may not have been applied (`AmbiguousOutcome`).
   */
  readonly follower: Effect.Effect<number, EtcdServerError>
  /** Runs etcdctl (API v3) against the cluster, with TLS and root credentials filled in; returns stdout. */
  readonly etcdctl: (args: ReadonlyArray<string>) => Effect.Effect<string, EtcdServerError>
  /**
   * Free loopback ports and a data dir (under the cluster's) for one more member named
   * `name`; nothing is started. Its peer URL is what a member-add call needs.
   */
  readonly reserveMember: (name: string) => Effect.Effect<MemberInfo, EtcdServerError>
  /**
   * Starts one more etcd process for a reserved member, with the cluster's flags and
   * `options`: a member joining the cluster (`initialClusterState: "existing"`, after a
   * member-add), or a new cluster of its own (a restored snapshot). It is stopped when the
   * cluster's scope closes, or by `stop`.
   */
  readonly startExtra: (member: MemberInfo, options: ExtraOptions) => Effect.Effect<ExtraMember, EtcdServerError>
}

/**
 * How to start an extra member.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExtraOptions {
  /** `--initial-cluster`: `name=peerUrl,...`, the new member included. */
  readonly initialCluster: string
  readonly initialClusterState: "new" | "existing"
  /** More flags. */
  readonly extraArgs?: ReadonlyArray<string> | undefined
  /**
   * When it counts as started: `healthy` (its `/health` says so, the default) or `serving`
   * (its metrics answer: for a member that cannot report healthy yet, one whose cluster
   * lacks a quorum, say).
   */
  readonly waitFor?: "healthy" | "serving" | undefined
}

/**
 * A running extra member.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExtraMember {
  readonly info: MemberInfo
  readonly pid: Effect.Effect<Option.Option<number>>
  /** Stops it (SIGKILL); its data dir is kept until the cluster's scope closes. */
  readonly stop: Effect.Effect<void>
}

/**
 * The service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export const EtcdServer: Context.Tag<EtcdServer, EtcdServer> = Context.GenericTag<EtcdServer>(
  "@effect-etcd/testing/EtcdServer"
)

/**
 * What to start.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How many members (default 1). */
  readonly members?: 1 | 3 | undefined
  /** Serve clients over TLS; `clientCertAuth` requires client certificates (mTLS). */
  readonly tls?: boolean | { readonly clientCertAuth?: boolean | undefined } | undefined
  /**
   * Enable auth with a `root` user; `authTokenTtl` sets the simple tokens' TTL, a duration
   * with its unit (`"5 minutes"`, `Duration.minutes(5)`: a bare number does not compile),
   * rounded to whole seconds.
   */
  readonly auth?: {
    /** The root user's password (default `root-password`); a plain string is taken too. */
    readonly rootPassword?: Redacted.Redacted<string> | string | undefined
    readonly authTokenTtl?: Etcd.DurationWithUnit | undefined
  } | undefined
  /** `--max-request-bytes`. */
  readonly maxRequestBytes?: number | undefined
  /** `--max-txn-ops`. */
  readonly maxTxnOps?: number | undefined
  /** More flags for every member. */
  readonly extraArgs?: ReadonlyArray<string> | undefined
}

interface Member {
  readonly info: MemberInfo
  readonly index: number
  readonly args: ReadonlyArray<string>
  readonly waitFor: "healthy" | "serving"
  running: Option.Option<{ readonly process: CommandExecutor.Process; readonly scope: Scope.CloseableScope }>
  readonly log: Array<string>
}

const logLines = 200

/**
 * The root of every data dir of this test run (the global setup removes leftovers).
 *
 * @since 0.1.0
 * @category constants
 */
export const dataRoot = (): string => `/dev/shm/effect-etcd-test-${process.env.EFFECT_ETCD_TEST_RUN ?? "local"}`

const fail = (message: string, cause?: unknown) => new EtcdServerError({ message, cause })

const healthy = (member: Member) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(`${member.info.metricsUrl}/health`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(1000)])
      })
      const body = (await response.json()) as { health?: string }
      return body.health === "true"
    },
    catch: () => false
  }).pipe(Effect.orElseSucceed(() => false))

const serving = (member: Member) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(`${member.info.metricsUrl}/metrics`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(1000)])
      })
      await response.text()
      return response.ok
    },
    catch: () => false
  }).pipe(Effect.orElseSucceed(() => false))

const tail = (member: Member) => member.log.slice(-30).join("\n")

/**
 * Starts the cluster; stopped and removed when the scope closes. An `authTokenTtl` that is
 * no duration with its unit (a bare number from JavaScript) fails with `EtcdServerError`
 * before anything starts.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<EtcdServer, EtcdServerError, Scope.Scope | CommandExecutor.CommandExecutor | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const tokenTtl: unknown = options.auth?.authTokenTtl
    if (
      tokenTtl !== undefined &&
      (typeof tokenTtl === "number" || typeof tokenTtl === "bigint" || Option.isNone(Duration.decodeUnknown(tokenTtl)))
    ) {
      return yield* fail(
        `auth.authTokenTtl must be a duration with its unit ("5 minutes", Duration.minutes(5)), got ${String(tokenTtl)}`
      )
    }
    const etcdBin = yield* findBinary("ETCD_BIN", "etcd")
    const executor = yield* CommandExecutor.CommandExecutor
    const fs = yield* FileSystem.FileSystem
    const clusterScope = yield* Effect.scope
    const root = dataRoot()
    yield* fs.makeDirectory(root, { recursive: true }).pipe(Effect.mapError((e) => fail(`cannot create ${root}`, e)))
    const dir = yield* fs.makeTempDirectoryScoped({ directory: root, prefix: `${process.pid}-` }).pipe(
      Effect.mapError((e) => fail(`cannot create a data dir under ${root}`, e))
    )
    // a program killed before its scope closes leaves no member running and no data behind
    yield* guard(dir)
    const count = options.members ?? 1
    const tlsOptions = options.tls === undefined || options.tls === false
      ? undefined
      : options.tls === true
      ? {}
      : options.tls
    const tls = tlsOptions === undefined ? Option.none() : Option.some(yield* makeTlsMaterial(`${dir}/tls`))
    const scheme = Option.isSome(tls) ? "https" : "http"
    const ports = yield* freePorts(count * 3)
    const token = `effect-etcd-${Math.random().toString(36).slice(2)}`
    const infos: Array<MemberInfo> = Array.from({ length: count }, (_, i) => ({
      name: `m${i}`,
      clientUrl: `${scheme}://127.0.0.1:${ports[i * 3]}`,
      peerUrl: `http://127.0.0.1:${ports[i * 3 + 1]}`,
      metricsUrl: `http://127.0.0.1:${ports[i * 3 + 2]}`,
      dataDir: `${dir}/m${i}`
    }))
    const initialCluster = infos.map((info) => `${info.name}=${info.peerUrl}`).join(",")
    const authTtl = options.auth?.authTokenTtl === undefined
      ? undefined
      : Math.max(1, Math.round(Duration.toSeconds(Duration.decode(options.auth.authTokenTtl))))
    const argsFor = (
      info: MemberInfo,
      cluster: string,
      state: "new" | "existing",
      extraArgs: ReadonlyArray<string>
    ): ReadonlyArray<string> => [
      "--name",
      info.name,
      "--data-dir",
      info.dataDir,
      "--listen-client-urls",
      info.clientUrl,
      "--advertise-client-urls",
      info.clientUrl,
      "--listen-peer-urls",
      info.peerUrl,
      "--initial-advertise-peer-urls",
      info.peerUrl,
      "--listen-metrics-urls",
      info.metricsUrl,
      "--initial-cluster",
      cluster,
      "--initial-cluster-token",
      token,
      "--initial-cluster-state",
      state,
      "--heartbeat-interval",
      "50",
      "--election-timeout",
      "500",
      "--quota-backend-bytes",
      String(512 * 1024 * 1024),
      "--logger",
      "zap",
      "--log-outputs",
      "stderr",
      "--log-level",
      "warn",
      "--enable-v2=false",
      ...(Option.isSome(tls)
        ? [
          "--cert-file",
          tls.value.serverCertFile,
          "--key-file",
          tls.value.serverKeyFile,
          ...(tlsOptions?.clientCertAuth ? ["--client-cert-auth", "--trusted-ca-file", tls.value.caFile] : [])
        ]
        : []),
      ...(authTtl === undefined ? [] : ["--auth-token", "simple", "--auth-token-ttl", String(authTtl)]),
      ...(options.maxRequestBytes === undefined ? [] : ["--max-request-bytes", String(options.maxRequestBytes)]),
      ...(options.maxTxnOps === undefined ? [] : ["--max-txn-ops", String(options.maxTxnOps)]),
      ...extraArgs
    ]
    const members: Array<Member> = infos.map((info, index) => ({
      info,
      index,
      running: Option.none(),
      log: [],
      waitFor: "healthy",
      args: argsFor(info, initialCluster, "new", options.extraArgs ?? [])
    }))

    const memberAt = (index: number) =>
      index >= 0 && index < members.length ? Effect.succeed(members[index]) : Effect.die(`no member ${index}`)

    const signal = (member: Member, name: "SIGSTOP" | "SIGCONT" | "SIGKILL" | "SIGTERM") =>
      Effect.sync(() => {
        if (Option.isNone(member.running)) return
        try {
          process.kill(member.running.value.process.pid, name)
        } catch {
          // already gone
        }
      })

    // a test that pauses a member sends it calls at once: it must be stopped by then
    const pause = (member: Member) =>
      Effect.gen(function*() {
        if (Option.isNone(member.running)) {
          return yield* Effect.dieMessage(`cannot pause ${member.info.name}: it is not running`)
        }
        yield* signal(member, "SIGSTOP")
        const state = yield* awaitState(member.running.value.process.pid, "stopped", Duration.seconds(5))
        if (state === "running" || state === "gone") {
          return yield* Effect.dieMessage(
            `${member.info.name} is ${state} 5 s after its SIGSTOP; its log:\n${tail(member)}`
          )
        }
      })

    const resume = (member: Member) =>
      Effect.gen(function*() {
        if (Option.isNone(member.running)) return
        yield* signal(member, "SIGCONT")
        const state = yield* awaitState(member.running.value.process.pid, "running", Duration.seconds(5))
        if (state === "stopped") {
          return yield* Effect.dieMessage(`${member.info.name} is still stopped 5 s after its SIGCONT`)
        }
      })

    const stop = (member: Member, how: "SIGKILL" | "SIGTERM") =>
      Effect.suspend(() => {
        if (Option.isNone(member.running)) return Effect.void
        const { process: child, scope } = member.running.value
        member.running = Option.none()
        return Effect.gen(function*() {
          // a paused member would never act on SIGTERM
          yield* Effect.sync(() => {
            try {
              process.kill(child.pid, "SIGCONT")
              process.kill(child.pid, how)
            } catch {
              // already gone
            }
          })
          const exited = yield* child.exitCode.pipe(Effect.timeout(Duration.seconds(5)), Effect.option)
          if (Option.isNone(exited)) {
            yield* Effect.sync(() => {
              try {
                process.kill(child.pid, "SIGKILL")
              } catch {
                // already gone
              }
            })
            yield* child.exitCode.pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
          }
          yield* Scope.close(scope, Exit.void)
        })
      })

    const startMember = (member: Member): Effect.Effect<void, EtcdServerError> =>
      Effect.gen(function*() {
        if (Option.isSome(member.running)) return
        const scope = yield* Scope.fork(clusterScope, ExecutionStrategy.sequential)
        const child = yield* Command.make(etcdBin, ...member.args).pipe(
          Command.stdout("pipe"),
          Command.stderr("pipe"),
          Command.start,
          Scope.extend(scope),
          Effect.mapError((e) => fail(`cannot start ${etcdBin}: ${e.message}`, e))
        )
        member.running = Option.some({ process: child, scope })
        const keep = (stream: Stream.Stream<Uint8Array, unknown>) =>
          stream.pipe(
            Stream.decodeText(),
            Stream.splitLines,
            Stream.runForEach((line) =>
              Effect.sync(() => {
                member.log.push(line)
                if (member.log.length > logLines) member.log.splice(0, member.log.length - logLines)
              })
            ),
            Effect.ignore,
            Effect.forkIn(scope)
          )
        yield* keep(child.stdout)
        yield* keep(child.stderr)
        for (let attempt = 0; attempt < 200; attempt++) {
          if (yield* (member.waitFor === "healthy" ? healthy(member) : serving(member))) return
          const running = yield* child.isRunning.pipe(Effect.orElseSucceed(() => false))
          if (!running) break
          yield* Effect.sleep(Duration.millis(100))
        }
        yield* stop(member, "SIGKILL")
        return yield* Effect.fail(
          fail(`etcd member ${member.info.name} did not become healthy; its log:\n${tail(member)}`)
        )
      }).pipe(Effect.provideService(CommandExecutor.CommandExecutor, executor))

    // stop every member first (finalizers run in reverse order: this one before the data dir goes)
    yield* Effect.addFinalizer(() =>
      onSystemClock(Effect.forEach(members, (member) => stop(member, "SIGKILL"), { discard: true }))
    )
    yield* Effect.forEach(members, startMember, { concurrency: "unbounded", discard: true })

    const etcdctlBin = yield* findBinary("ETCDCTL_BIN", "etcdctl")
    const rootPassword = options.auth === undefined ? undefined : passwordOf(options.auth.rootPassword)
    const endpoints = infos.map((info) => info.clientUrl)
    let authEnabled = false
    const etcdctl = (args: ReadonlyArray<string>): Effect.Effect<string, EtcdServerError> =>
      Effect.scoped(Effect.gen(function*() {
        const flags = [
          `--endpoints=${endpoints.join(",")}`,
          "--dial-timeout=5s",
          "--command-timeout=10s",
          ...(Option.isSome(tls)
            ? [`--cacert=${tls.value.caFile}`, `--cert=${tls.value.clientCertFile}`, `--key=${tls.value.clientKeyFile}`]
            : []),
          ...(authEnabled && rootPassword !== undefined ? [`--user=root:${rootPassword}`] : [])
        ]
        const child = yield* Command.make(etcdctlBin, ...flags, ...args).pipe(
          Command.env({ ETCDCTL_API: "3" }),
          Command.start
        )
        const [stdout, stderr, code] = yield* Effect.all([
          child.stdout.pipe(Stream.decodeText(), Stream.mkString),
          child.stderr.pipe(Stream.decodeText(), Stream.mkString),
          child.exitCode
        ], { concurrency: "unbounded" })
        if (code !== 0) return yield* Effect.fail(fail(`etcdctl ${args.join(" ")} failed (${code}): ${stderr.trim()}`))
        return stdout
      })).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        Effect.catchAll((e) => e instanceof EtcdServerError ? Effect.fail(e) : Effect.fail(fail("etcdctl failed", e)))
      )

    const extras: Array<Member> = []
    yield* Effect.addFinalizer(() =>
      onSystemClock(Effect.forEach(extras, (member) => stop(member, "SIGKILL"), { discard: true }))
    )
    const reserveMember = (name: string) =>
      Effect.map(freePorts(3), (ports): MemberInfo => ({
        name,
        clientUrl: `${scheme}://127.0.0.1:${ports[0]}`,
        peerUrl: `http://127.0.0.1:${ports[1]}`,
        metricsUrl: `http://127.0.0.1:${ports[2]}`,
        dataDir: `${dir}/${name}-${ports[0]}`
      }))
    const startExtra = (info: MemberInfo, extra: ExtraOptions) =>
      Effect.gen(function*() {
        const member: Member = {
          info,
          index: members.length + extras.length,
          running: Option.none(),
          log: [],
          waitFor: extra.waitFor ?? "healthy",
          args: argsFor(info, extra.initialCluster, extra.initialClusterState, [
            ...(options.extraArgs ?? []),
            ...(extra.extraArgs ?? [])
          ])
        }
        extras.push(member)
        yield* startMember(member)
        return {
          info,
          pid: Effect.sync(() => Option.map(member.running, (running) => running.process.pid as number)),
          stop: onSystemClock(stop(member, "SIGKILL"))
        } satisfies ExtraMember
      })

    if (rootPassword !== undefined) {
      yield* etcdctl(["user", "add", `root:${rootPassword}`])
      yield* etcdctl(["auth", "enable"])
      authEnabled = true
    }

    const metrics = (index: number) =>
      Effect.flatMap(memberAt(index), (member) =>
        Effect.tryPromise({
          try: async () => (await fetch(`${member.info.metricsUrl}/metrics`)).text(),
          catch: (e) => fail(`cannot read metrics of ${member.info.name}`, e)
        }))

    const metric = (index: number, name: string) =>
      Effect.map(metrics(index), (text) =>
        text.split("\n").reduce((sum, line) => {
          if (!line.startsWith(name) || (line[name.length] !== " " && line[name.length] !== "{")) return sum
          const value = Number(line.slice(line.lastIndexOf(" ") + 1))
          return Number.isFinite(value) ? sum + value : sum
        }, 0))

    /** Whether member `index` runs, knows a leader and is not it (false when its metrics do not come within 1 s). */
    const follows = (index: number) =>
      Effect.all([metric(index, "etcd_server_has_leader"), metric(index, "etcd_server_is_leader")]).pipe(
        Effect.map(([hasLeader, isLeader]) => hasLeader === 1 && isLeader === 0),
        Effect.timeout(Duration.seconds(1)),
        Effect.orElseSucceed(() => false)
      )

    const follower = Effect.gen(function*() {
      for (let attempt = 0; attempt < 300; attempt++) {
        for (let index = 0; index < infos.length; index++) {
          if (yield* follows(index)) return index
        }
        yield* Effect.sleep(Duration.millis(100))
      }
      return yield* fail("no member followed a leader within 30 s")
    })

    return {
      endpoints,
      members: infos,
      tls,
      auth: rootPassword === undefined
        ? Option.none()
        : Option.some({ rootUser: "root" as const, rootPassword: Redacted.make(rootPassword) }),
      pid: (index) =>
        Effect.map(memberAt(index), (member) => Option.map(member.running, (running) => running.process.pid as number)),
      kill: (index, how = "SIGKILL") => onSystemClock(Effect.flatMap(memberAt(index), (member) => stop(member, how))),
      start: (index) => onSystemClock(Effect.flatMap(memberAt(index), startMember)),
      restart: (index) =>
        onSystemClock(
          Effect.flatMap(memberAt(index), (member) => Effect.zipRight(stop(member, "SIGKILL"), startMember(member)))
        ),
      pause: (index) => onSystemClock(Effect.flatMap(memberAt(index), pause)),
      resume: (index) => onSystemClock(Effect.flatMap(memberAt(index), resume)),
      metrics,
      metric,
      follower: onSystemClock(follower),
      etcdctl,
      reserveMember,
      startExtra: (info, extra) => onSystemClock(startExtra(info, extra))
    } satisfies EtcdServer
  }).pipe(onSystemClock, Effect.annotateLogs({ module: "EtcdServer" }))

/**
 * The cluster as a layer (Node's platform services included).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<EtcdServer, EtcdServerError> =>
  Layer.scoped(EtcdServer, make(options)).pipe(Layer.provide(NodeContext.layer))

/** The root password as text, for etcdctl's flags; `root-password` by default. */
const passwordOf = (password: Redacted.Redacted<string> | string | undefined): string =>
  password === undefined ? "root-password" : typeof password === "string" ? password : Redacted.value(password)

/**
 * A server and a client of it together: the cluster of {@link layer} and an `Etcd` client
 * on its endpoints, with its TLS material (CA, client certificate and key) and, with
 * `auth`, the root user's credentials filled in. `client` adds or overrides client options.
 *
 * @example
 * ```ts
 * import { EtcdServer } from "@effect-etcd/testing"
 * import { expect, layer } from "@effect/vitest"
 * import { Effect, Option } from "effect"
 * import { Kv } from "effect-etcd"
 *
 * layer(EtcdServer.layerClient({ members: 3 }), { excludeTestServices: true })("my suite", (it) => {
 *   it.effect("reads what it wrote after a member restart", () =>
 *     Effect.gen(function*() {
 *       yield* Kv.put("k", "v")
 *       const server = yield* EtcdServer.EtcdServer
 *       yield* server.restart(0)
 *       expect(yield* Kv.get("k")).toEqual(Option.some("v"))
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: Options = {},
  client: Omit<Etcd.EtcdOptions, "endpoints"> = {}
): Layer.Layer<EtcdServer | Etcd.Etcd, EtcdServerError | EtcdError.ConnectError> =>
  Layer.provideMerge(
    Layer.unwrapEffect(Effect.map(EtcdServer, (server) =>
      Etcd.layer({
        endpoints: server.endpoints,
        ...Option.match(server.tls, {
          onNone: () => ({}),
          onSome: (tls) => ({ tls: { ca: tls.ca, cert: tls.clientCert, key: Redacted.make(tls.clientKey) } })
        }),
        ...Option.match(server.auth, {
          onNone: () => ({}),
          onSome: (auth) => ({ username: auth.rootUser, password: auth.rootPassword })
        }),
        ...client
      }))),
    layer(options)
  )
