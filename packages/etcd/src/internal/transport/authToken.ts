/**
 * The auth token: taken with the client's credentials (Authenticate), sent with every call,
 * and taken again when the server rejects it. It is read on every call, so it lives in a
 * plain variable; refreshes are serialized, so that many calls failing on one expired token
 * authenticate once. Without credentials there is no token, and a refresh does nothing.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as EtcdError from "../../EtcdError.js"

/** The client's credentials. */
export interface Credentials {
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

/** The token and what is done with it. */
export interface AuthToken {
  /** Whether the client authenticates. */
  readonly authenticates: boolean
  /** The user's name, for the error messages. */
  readonly username: string | undefined
  /** The current token (none without credentials or before the first authentication). */
  readonly current: () => Option.Option<string>
  /** The headers of a call sent with `token`: one object per token, shared by its calls. */
  readonly headersFor: (token: Option.Option<string>) => Readonly<Record<string, string>>
  /**
   * Takes a fresh token in place of `rejected` (fails with EtcdAuthFailed on wrong
   * credentials); a no-op without credentials, or when another fiber already replaced it.
   * When auth was turned off, calls go on without a token (as clientv3's do).
   */
  readonly refresh: (rejected: Option.Option<string>) => Effect.Effect<void, EtcdError.EtcdError>
  /** Takes the first token when the client authenticates and has none yet (before opening a stream). */
  readonly ensure: Effect.Effect<void, EtcdError.EtcdError>
  /**
   * Whether the server refused a call sent with `sent` for its token, before running it:
   * the token is invalid or expired, or there was none because auth was off when the last
   * one was asked for and is on again ("user name is empty").
   */
  readonly needsNewToken: (error: EtcdError.EtcdError, sent: Option.Option<string>) => boolean
}

/** The headers of a call made without a token. */
export const noToken: Readonly<Record<string, string>> = Object.freeze({})

/** Makes the token's keeper; `authenticate` asks a member for a token with `credentials`. */
export const make = (
  credentials: Option.Option<Credentials>,
  authenticate: (credentials: Credentials) => Effect.Effect<string, EtcdError.EtcdError>
): Effect.Effect<AuthToken> =>
  Effect.map(Effect.makeSemaphore(1), (refreshLock) => {
    let token = Option.none<string>()
    // a call's headers are only read, so one object serves every call made with the same
    // token: none is built per call
    let tokenHeaders: { readonly token: string; readonly headers: Readonly<Record<string, string>> } | undefined
    const headersFor = (current: Option.Option<string>): Readonly<Record<string, string>> => {
      if (Option.isNone(current)) return noToken
      if (tokenHeaders === undefined || tokenHeaders.token !== current.value) {
        tokenHeaders = { token: current.value, headers: { token: current.value } }
      }
      return tokenHeaders.headers
    }
    const refresh = (rejected: Option.Option<string>): Effect.Effect<void, EtcdError.EtcdError> =>
      Option.match(credentials, {
        onNone: () => Effect.void,
        onSome: (credentials) =>
          refreshLock.withPermits(1)(Effect.suspend(() =>
            token === rejected
              ? authenticate(credentials).pipe(
                Effect.map(Option.some),
                // auth was turned off: calls go without a token (as clientv3 does)
                Effect.catchIf(
                  (error) =>
                    error._tag === "EtcdPreconditionFailed" && error.reason.includes("authentication is not enabled"),
                  () => Effect.succeed(Option.none<string>())
                ),
                Effect.map((fresh) => {
                  token = fresh
                })
              )
              : Effect.void
          ))
      })
    const authenticates = Option.isSome(credentials)
    return {
      authenticates,
      username: Option.getOrUndefined(Option.map(credentials, (credentials) => credentials.username)),
      current: () => token,
      headersFor,
      refresh,
      ensure: Effect.suspend(() => authenticates && Option.isNone(token) ? refresh(token) : Effect.void),
      needsNewToken: (error, sent) =>
        authenticates && (error._tag === "InvalidAuthToken" ||
          (Option.isNone(sent) && error._tag === "EtcdInvalidArgument" && error.reason.includes("user name is empty")))
    } satisfies AuthToken
  })

/**
 * The same keeper, whose calls carry `extra` headers too (the `hasleader` of a client that
 * requires a leader): one object per token, as `headersFor`'s own.
 */
export const withHeaders = (auth: AuthToken, extra: Readonly<Record<string, string>>): AuthToken => {
  const bare = Object.freeze({ ...extra })
  let cached: { readonly token: string; readonly headers: Readonly<Record<string, string>> } | undefined
  return {
    ...auth,
    headersFor: (current) => {
      if (Option.isNone(current)) return bare
      if (cached === undefined || cached.token !== current.value) {
        cached = { token: current.value, headers: Object.freeze({ ...auth.headersFor(current), ...extra }) }
      }
      return cached.headers
    }
  }
}
