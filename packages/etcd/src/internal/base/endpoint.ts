/** Parsing of endpoint strings (`http://127.0.0.1:2379`, `https://host:2379`, `host:2379`). */

/** One etcd member as the transport dials it. */
export interface Endpoint {
  /** What the user wrote, used in error messages. */
  readonly url: string
  /** `host:port` as gRPC dials it. */
  readonly address: string
  readonly host: string
  readonly port: number
  /** Whether the URL asked for TLS (`https://`). */
  readonly secure: boolean
}

/** Everything up to the last `@` after the scheme: where a URL's user name and password are. */
const userInfo = /^((?:[a-z][a-z0-9+.-]*:\/\/)?).*@/i

/**
 * Parses one endpoint, or returns a reason it cannot be used. A reason never quotes
 * credentials: an endpoint with user information (`http://user:password@host:2379`) is
 * refused, and shown with that part replaced by `***`.
 */
export const parse = (raw: string): Endpoint | string => {
  const url = raw.trim()
  if (url.length === 0) return "an endpoint is empty"
  if (url.includes("@")) {
    return `endpoint ${JSON.stringify(url.replace(userInfo, "$1***@"))} has a user name or password in it: ` +
      "give them as the username and password options instead"
  }
  const match = /^(?:(https?|unix|dns):\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/i.exec(url)
  if (match === null) return `cannot parse endpoint ${JSON.stringify(url)} (expected http://host:port)`
  const scheme = (match[1] ?? "http").toLowerCase()
  if (scheme === "unix") return `unix sockets are not supported: ${JSON.stringify(url)}`
  const host = match[2]!
  const port = match[3] === undefined ? 2379 : Number(match[3])
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return `invalid port in endpoint ${JSON.stringify(url)}`
  return { url, address: `${host}:${port}`, host: host.replace(/^\[|\]$/g, ""), port, secure: scheme === "https" }
}

/** Splits a comma-separated endpoint list (as in `ETCD_ENDPOINTS`). */
export const splitList = (list: string): Array<string> =>
  list.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
