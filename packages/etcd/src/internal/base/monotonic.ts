/**
 * The clock of every deadline and elapsed time: milliseconds on a monotonic clock
 * (`performance.now()`, the clock Node's own timers keep). Unlike `Date.now()`, it never
 * jumps when the wall clock is stepped (NTP, a VM resumed, the date set by hand), so a
 * deadline neither passes at once nor recedes by the size of the step. Its values mean
 * nothing as dates: only differences between them do.
 */

/** Now, in milliseconds on the monotonic clock (fractional; only differences mean anything). */
export const now = (): number => performance.now()
