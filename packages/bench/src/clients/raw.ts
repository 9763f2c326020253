/**
 * The floor: the same workloads as plain @grpc/grpc-js calls on protos loaded by
 * @grpc/proto-loader, with no client library. The lock is etcd's own v3lock service.
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as path from "node:path"
import { collect, cpuMeter, heldMb, Latencies, measure, pool, rssMb, rssSampler, secondsSince } from "../measure.js"
import {
  type Job,
  keyOf,
  type LeasesFigures,
  type Measurement,
  payload,
  scaleConcurrency,
  scaleLeaseTtl,
  type WatchersFigures
} from "../workloads.js"

const protoDir = path.resolve(import.meta.dirname, "../../../etcd/proto")

type Unary = (request: object, callback: (error: grpc.ServiceError | null, response: any) => void) => void
type Service = grpc.Client & Record<string, Unary | ((...args: Array<any>) => any)>

const load = () => {
  const definition = protoLoader.loadSync(
    ["etcdserverpb/rpc.proto", "v3lockpb/v3lock.proto"].map((file) => path.join(protoDir, file)),
    { includeDirs: [protoDir], longs: String, enums: String, defaults: true, oneofs: true }
  )
  return grpc.loadPackageDefinition(definition) as any
}

const call = (service: Service, method: string, request: object): Promise<any> =>
  new Promise((resolve, reject) =>
    (service[method] as Unary).call(service, request, (error, response) => error ? reject(error) : resolve(response))
  )

/** The `host:port` grpc-js dials for a job's endpoint. */
const addressOf = (job: Pick<Job, "endpoint">): string => job.endpoint.replace(/^https?:\/\//, "")

/**
 * Of `ids` (lease IDs), how many the server lists (one LeaseLeases call): the scale
 * workloads ask it the same way whatever the client under test.
 */
export const countLeasesListed = async (endpoint: string, ids: ReadonlyArray<bigint | string>): Promise<number> => {
  const leaseService: Service = new (load().etcdserverpb.Lease)(
    addressOf({ endpoint }),
    grpc.credentials.createInsecure()
  )
  try {
    const response = await call(leaseService, "LeaseLeases", {})
    const listed = new Set<string>(response.leases.map((lease: { ID: string }) => String(lease.ID)))
    return ids.filter((id) => listed.has(String(id))).length
  } finally {
    leaseService.close()
  }
}

const put = (kv: Service, key: string, value: string) =>
  call(kv, "Put", { key: Buffer.from(key), value: Buffer.from(value) })

/**
 * Puts `job.ops` values of `size` bytes under `job.prefix`, `job.concurrency` at a time:
 * the writer of the slow-consumer check, in a process of its own so that only the
 * watcher's memory is measured.
 */
export const write = async (job: Job, size: number): Promise<void> => {
  const kv: Service = new (load().etcdserverpb.KV)(addressOf(job), grpc.credentials.createInsecure())
  const value = payload(size)
  try {
    await pool(job.ops, job.concurrency, (i) => put(kv, keyOf(job.prefix, i), value))
  } finally {
    kv.close()
  }
}

export const run = async (job: Job): Promise<Measurement> => {
  const proto = load()
  const address = addressOf(job)
  const credentials = grpc.credentials.createInsecure()
  const kv: Service = new proto.etcdserverpb.KV(address, credentials)
  const leaseService: Service = new proto.etcdserverpb.Lease(address, credentials)
  const watchService: Service = new proto.etcdserverpb.Watch(address, credentials)
  const lockService: Service = new proto.v3lockpb.Lock(address, credentials)
  const latencies = new Latencies()
  const value = payload(64)
  const prefixEnd = (prefix: string) => {
    const end = Buffer.from(prefix)
    end[end.length - 1]++
    return end
  }
  const timed = (op: () => PromiseLike<unknown>) => latencies.time(op)
  try {
    switch (job.workload) {
      case "put-1":
      case "put-128":
        return await measure(
          "raw-grpc",
          job,
          latencies,
          (n) => pool(n, job.concurrency, (i) => timed(() => put(kv, keyOf(job.prefix, i), value)))
        )
      case "get-1":
      case "get-128": {
        await pool(1000, 64, (i) => put(kv, keyOf(job.prefix, i), value))
        return await measure(
          "raw-grpc",
          job,
          latencies,
          (n) =>
            pool(
              n,
              job.concurrency,
              (i) => timed(() => call(kv, "Range", { key: Buffer.from(keyOf(job.prefix, i)) }))
            )
        )
      }
      case "range-1000x1KiB": {
        const big = payload(1024)
        await pool(1000, 64, (i) => put(kv, `${job.prefix}r/${String(i).padStart(4, "0")}`, big))
        const key = Buffer.from(`${job.prefix}r/`)
        return await measure("raw-grpc", job, latencies, (n) =>
          pool(n, job.concurrency, () =>
            timed(async () => {
              const response = await call(kv, "Range", { key, rangeEnd: prefixEnd(`${job.prefix}r/`) })
              if (response.kvs.length !== 1000) throw new Error(`range returned ${response.kvs.length} keys`)
            })))
      }
      case "txn-cas-64": {
        const lanes = job.concurrency
        const current = Array.from({ length: lanes }, () => 0)
        await pool(lanes, lanes, (lane) => put(kv, `${job.prefix}cas/${lane}`, "0"))
        let next = 0
        return await measure("raw-grpc", job, latencies, (n) => {
          next = 0
          return pool(lanes, lanes, async (lane) => {
            while (next < n) {
              next++
              await timed(async () => {
                const key = Buffer.from(`${job.prefix}cas/${lane}`)
                const response = await call(kv, "Txn", {
                  compare: [{ key, target: "VALUE", result: "EQUAL", value: Buffer.from(String(current[lane])) }],
                  success: [{ requestPut: { key, value: Buffer.from(String(current[lane] + 1)) } }],
                  failure: []
                })
                if (!response.succeeded) throw new Error("compare-and-swap lost")
                current[lane]++
              })
            }
          })
        })
      }
      case "watch-20000": {
        const prefix = `${job.prefix}w/`
        return await measure("raw-grpc", job, latencies, async (n) => {
          const stream = (watchService.Watch as () => grpc.ClientDuplexStream<object, any>).call(watchService)
          stream.on("error", () => {})
          let received = 0
          let resolveAll: () => void = () => {}
          const all = new Promise<void>((resolve) => resolveAll = resolve)
          const created = new Promise<void>((resolve) => {
            stream.on("data", (response: any) => {
              if (response.created) resolve()
              received += response.events.length
              if (received >= n) resolveAll()
            })
          })
          stream.write({ createRequest: { key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix) } })
          await created
          await pool(n, job.concurrency, (i) => timed(() => put(kv, `${prefix}${i % 1000}`, value)))
          await all
          stream.cancel()
        })
      }
      case "lease-grant-revoke":
        return await measure("raw-grpc", job, latencies, (n) =>
          pool(n, job.concurrency, () =>
            timed(async () => {
              const grant = await call(leaseService, "LeaseGrant", { TTL: 10 })
              await call(leaseService, "LeaseRevoke", { ID: grant.ID })
            })))
      case "lock-acquire-release":
        return await measure("raw-grpc", job, latencies, (n) =>
          pool(n, job.concurrency, () =>
            timed(async () => {
              const grant = await call(leaseService, "LeaseGrant", { TTL: 10 })
              const locked = await call(lockService, "Lock", {
                name: Buffer.from(`${job.prefix}lock`),
                lease: grant.ID
              })
              await call(lockService, "Unlock", { key: locked.key })
              await call(leaseService, "LeaseRevoke", { ID: grant.ID })
            })))
      case "lock-on-session": {
        // one lease granted outside the measured sections, as a session holds it
        const grant = await call(leaseService, "LeaseGrant", { TTL: 10 })
        try {
          return await measure("raw-grpc", job, latencies, (n) =>
            pool(n, job.concurrency, () =>
              timed(async () => {
                const locked = await call(lockService, "Lock", {
                  name: Buffer.from(`${job.prefix}lock`),
                  lease: grant.ID
                })
                await call(lockService, "Unlock", { key: locked.key })
              })))
        } finally {
          await call(leaseService, "LeaseRevoke", { ID: grant.ID })
        }
      }
    }
  } finally {
    await call(kv, "DeleteRange", { key: Buffer.from(job.prefix), rangeEnd: prefixEnd(job.prefix) })
    for (const client of [kv, leaseService, watchService, lockService]) client.close()
  }
}

/**
 * `watchers-10k` on plain grpc-js, the floor: one Watch stream, creates 64 in flight
 * (matched to their created answers in order), a promise per watcher for its first event.
 */
export const watchers10k = async (job: Job): Promise<WatchersFigures> => {
  const proto = load()
  const address = addressOf(job)
  const credentials = grpc.credentials.createInsecure()
  const kv: Service = new proto.etcdserverpb.KV(address, credentials)
  const watchService: Service = new proto.etcdserverpb.Watch(address, credentials)
  const value = payload(64)
  const prefixEnd = (prefix: string) => {
    const end = Buffer.from(prefix)
    end[end.length - 1]++
    return end
  }
  const round = async (prefix: string, n: number) => {
    const stream = (watchService.Watch as () => grpc.ClientDuplexStream<object, any>).call(watchService)
    stream.on("error", () => {})
    const creates: Array<(watchId: string) => void> = []
    const firstEvent = new Map<string, () => void>()
    stream.on("data", (response: any) => {
      if (response.created) creates.shift()?.(String(response.watchId))
      if (response.events.length > 0) {
        const resolve = firstEvent.get(String(response.watchId))
        firstEvent.delete(String(response.watchId))
        resolve?.()
      }
    })
    const rss = rssSampler()
    const start = process.hrtime.bigint()
    const delivered: Array<Promise<void>> = []
    await pool(n, scaleConcurrency, async (i) => {
      const key = `${prefix}${i}/`
      const watchId = await new Promise<string>((resolve) => {
        creates.push(resolve)
        stream.write({ createRequest: { key: Buffer.from(key), rangeEnd: prefixEnd(key) } })
      })
      delivered.push(new Promise<void>((resolve) => firstEvent.set(watchId, resolve)))
    })
    const create_s = secondsSince(start)
    const rss_watchers_mb = rssMb()
    const held_watchers_mb = heldMb()
    const putStart = process.hrtime.bigint()
    await pool(n, scaleConcurrency, (i) => put(kv, `${prefix}${i}/k`, value))
    await Promise.all(delivered)
    const deliver_s = secondsSince(putStart)
    const rss_peak_mb = rss.stop()
    stream.cancel()
    return { create_s, deliver_s, rss_watchers_mb, held_watchers_mb, rss_peak_mb, delivered: delivered.length }
  }
  try {
    await round(`${job.prefix}warmup/`, Math.max(1, Math.ceil(job.ops / 10)))
    const held_base_mb = heldMb()
    const rss_base_mb = rssMb()
    const figures = await round(`${job.prefix}w/`, job.ops)
    return { client: "raw-grpc", watchers: job.ops, rss_base_mb, held_base_mb, ...figures }
  } finally {
    await call(kv, "DeleteRange", { key: Buffer.from(job.prefix), rangeEnd: prefixEnd(job.prefix) })
    for (const client of [kv, watchService]) client.close()
  }
}

/**
 * `leases-10k` on plain grpc-js, the floor: grants 64 in flight, one LeaseKeepAlive
 * stream on which every lease is refreshed every TTL/3 from one timer, revokes 64 in flight.
 */
export const leases10k = async (job: Job): Promise<LeasesFigures> => {
  const proto = load()
  const leaseService: Service = new proto.etcdserverpb.Lease(addressOf(job), grpc.credentials.createInsecure())
  const round = async (n: number, idleSeconds: number) => {
    const stream = (leaseService.LeaseKeepAlive as () => grpc.ClientDuplexStream<object, any>).call(leaseService)
    stream.on("error", () => {})
    stream.on("data", () => {})
    const ids: Array<string> = []
    // refreshes every lease granted so far, from the first grant on (the grants may take longer than a TTL)
    const timer = setInterval(() => {
      for (const ID of ids) stream.write({ ID })
    }, scaleLeaseTtl * 1000 / 3)
    const start = process.hrtime.bigint()
    await pool(n, scaleConcurrency, async () => {
      ids.push((await call(leaseService, "LeaseGrant", { TTL: scaleLeaseTtl })).ID)
    })
    const grant_s = secondsSince(start)
    collect()
    const cpu = cpuMeter()
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
    const idle = cpu.stop()
    const alive_after_idle = await countLeasesListed(job.endpoint, ids)
    const closeStart = process.hrtime.bigint()
    clearInterval(timer)
    // a lease that expired meanwhile answers NOT_FOUND: `alive_after_idle` counts those
    await pool(ids.length, scaleConcurrency, (i) => call(leaseService, "LeaseRevoke", { ID: ids[i] }).catch(() => {}))
    const close_s = secondsSince(closeStart)
    stream.cancel()
    const left = await countLeasesListed(job.endpoint, ids)
    // no bookkeeping of losses here: `alive_after_idle` tells
    return { grant_s, idle_cpu_pct: idle.percent, idle_s: idle.seconds, lost: 0, alive_after_idle, close_s, left }
  }
  try {
    await round(Math.max(1, Math.ceil(job.ops / 10)), 0)
    const figures = await round(job.ops, job.idleSeconds ?? 10)
    return { client: "raw-grpc", leases: job.ops, ...figures }
  } finally {
    leaseService.close()
  }
}
