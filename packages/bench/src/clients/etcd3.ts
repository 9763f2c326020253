/** The workloads through the `etcd3` npm package, written as its README shows. */
import { Etcd3 } from "etcd3"
import { Latencies, measure, pool } from "../measure.js"
import { type Job, keyOf, type Measurement, payload } from "../workloads.js"

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
