/** The workloads through the `etcd3` npm package, written as its README shows. */
import { Etcd3 } from "etcd3"
import type { Lease, Watcher } from "etcd3"
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
import { countLeasesListed } from "./raw.js"

export const run = async (job: Job): Promise<Measurement> => {
  const client = new Etcd3({ hosts: job.endpoint })
  const latencies = new Latencies()
  const value = payload(64)
  const timed = (op: () => PromiseLike<unknown>) => latencies.time(op)
  try {
    switch (job.workload) {
      case "put-1":
      case "put-128":
        return await measure(
          "etcd3",
          job,
          latencies,
          (n) => pool(n, job.concurrency, (i) => timed(() => client.put(keyOf(job.prefix, i)).value(value).exec()))
        )
      case "get-1":
      case "get-128": {
        await pool(1000, 64, (i) => client.put(keyOf(job.prefix, i)).value(value).then(() => {}))
        return await measure(
          "etcd3",
          job,
          latencies,
          (n) => pool(n, job.concurrency, (i) => timed(() => client.get(keyOf(job.prefix, i)).string()))
        )
      }
      case "range-1000x1KiB": {
        const big = payload(1024)
        await pool(
          1000,
          64,
          (i) => client.put(`${job.prefix}r/${String(i).padStart(4, "0")}`).value(big).then(() => {})
        )
        return await measure("etcd3", job, latencies, (n) =>
          pool(n, job.concurrency, () =>
            timed(async () => {
              const all = await client.getAll().prefix(`${job.prefix}r/`).strings()
              if (Object.keys(all).length !== 1000) throw new Error("range returned the wrong count")
            })))
      }
      case "txn-cas-64": {
        const lanes = job.concurrency
        const current = Array.from({ length: lanes }, () => 0)
        await pool(lanes, lanes, (lane) => client.put(`${job.prefix}cas/${lane}`).value("0").then(() => {}))
        let next = 0
        return await measure("etcd3", job, latencies, (n) => {
          next = 0
          return pool(lanes, lanes, async (lane) => {
            while (next < n) {
              next++
              await timed(async () => {
                const key = `${job.prefix}cas/${lane}`
                const result = await client.if(key, "Value", "==", String(current[lane]))
                  .then(client.put(key).value(String(current[lane] + 1)))
                  .commit()
                if (!result.succeeded) throw new Error("compare-and-swap lost")
                current[lane]++
              })
            }
          })
        })
      }
      case "watch-20000": {
        const prefix = `${job.prefix}w/`
        return await measure("etcd3", job, latencies, async (n) => {
          const watcher = await client.watch().prefix(prefix).create()
          let received = 0
          const all = new Promise<void>((resolve) =>
            watcher.on("put", () => {
              if (++received >= n) resolve()
            })
          )
          await pool(n, job.concurrency, (i) => timed(() => client.put(`${prefix}${i % 1000}`).value(value).exec()))
          await all
          await watcher.cancel()
        })
      }
      case "lease-grant-revoke":
        return await measure("etcd3", job, latencies, (n) =>
          pool(n, job.concurrency, () =>
            timed(async () => {
              const lease = client.lease(10, { autoKeepAlive: false })
              await lease.grant()
              await lease.revoke()
            })))
      case "lock-acquire-release":
      case "lock-on-session":
        // etcd3 has no session: its counterpart is its lock cycle, a lease per lock
        return await measure("etcd3", job, latencies, (n) =>
          pool(n, job.concurrency, () =>
            timed(async () => {
              const lock = client.lock(`${job.prefix}lock`).ttl(10)
              await lock.acquire()
              await lock.release()
            })))
    }
  } finally {
    await client.delete().prefix(job.prefix)
    client.close()
  }
}

/**
 * `watchers-10k` through etcd3: `job.ops` watchers, each on its own prefix with a `put`
 * listener waiting for one event, created 64 at a time; then one put per prefix, 64 at a time.
 */
export const watchers10k = async (job: Job): Promise<WatchersFigures> => {
  const client = new Etcd3({ hosts: job.endpoint })
  const value = payload(64)
  const round = async (prefix: string, n: number) => {
    const rss = rssSampler()
    const start = process.hrtime.bigint()
    const watchers: Array<Watcher> = []
    const delivered: Array<Promise<void>> = []
    await pool(n, scaleConcurrency, async (i) => {
      const watcher = await client.watch().prefix(`${prefix}${i}/`).create()
      watchers.push(watcher)
      delivered.push(new Promise<void>((resolve) => watcher.once("put", () => resolve())))
    })
    const create_s = secondsSince(start)
    const rss_watchers_mb = rssMb()
    const held_watchers_mb = heldMb()
    const putStart = process.hrtime.bigint()
    await pool(n, scaleConcurrency, (i) => client.put(`${prefix}${i}/k`).value(value).then(() => {}))
    await Promise.all(delivered)
    const deliver_s = secondsSince(putStart)
    const rss_peak_mb = rss.stop()
    await pool(watchers.length, scaleConcurrency, (i) => watchers[i].cancel())
    return { create_s, deliver_s, rss_watchers_mb, held_watchers_mb, rss_peak_mb, delivered: delivered.length }
  }
  try {
    await round(`${job.prefix}warmup/`, Math.max(1, Math.ceil(job.ops / 10)))
    const held_base_mb = heldMb()
    const rss_base_mb = rssMb()
    const figures = await round(`${job.prefix}w/`, job.ops)
    return { client: "etcd3", watchers: job.ops, rss_base_mb, held_base_mb, ...figures }
  } finally {
    await client.delete().prefix(job.prefix)
    client.close()
  }
}

/**
 * `leases-10k` through etcd3: `job.ops` leases of 6 s (`client.lease`, kept alive by
 * etcd3) granted 64 at a time; an idle window; then every lease revoked, 64 at a time.
 */
export const leases10k = async (job: Job): Promise<LeasesFigures> => {
  const client = new Etcd3({ hosts: job.endpoint })
  const round = async (n: number, idleSeconds: number) => {
    const leases: Array<Lease> = []
    let lost = 0
    const start = process.hrtime.bigint()
    await pool(n, scaleConcurrency, async () => {
      const lease = client.lease(scaleLeaseTtl)
      lease.on("lost", () => lost++)
      leases.push(lease)
      await lease.grant()
    })
    const grant_s = secondsSince(start)
    const ids = await Promise.all(leases.map((lease) => lease.grant()))
    collect()
    const cpu = cpuMeter()
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
    const idle = cpu.stop()
    const alive_after_idle = await countLeasesListed(job.endpoint, ids)
    const closeStart = process.hrtime.bigint()
    await pool(leases.length, scaleConcurrency, (i) => leases[i].revoke())
    const close_s = secondsSince(closeStart)
    const left = await countLeasesListed(job.endpoint, ids)
    return { grant_s, idle_cpu_pct: idle.percent, idle_s: idle.seconds, lost, alive_after_idle, close_s, left }
  }
  try {
    await round(Math.max(1, Math.ceil(job.ops / 10)), 0)
    const figures = await round(job.ops, job.idleSeconds ?? 10)
    return { client: "etcd3", leases: job.ops, ...figures }
  } finally {
    client.close()
  }
}
