/**
 * The encoder of WatchRequest (create, cancel, progress), in place of the generated one,
 * which copies each request into a message object (a `Long` per int64 field: the watch ID
 * and the start revision) and then writes it through a list of operations. A create is
 * sent for every watcher, and again for each one on every new stream; this writes the
 * same bytes straight into one buffer.
 */
import type { WatchCancelRequest } from "./generated/etcdserverpb/WatchCancelRequest.js"
import type { WatchCreateRequest } from "./generated/etcdserverpb/WatchCreateRequest.js"
import type { WatchRequest } from "./generated/etcdserverpb/WatchRequest.js"
import { encoder, type Writer } from "./kvRequests.js"

const filterTypes: Readonly<Record<string, number>> = { NOPUT: 0, NODELETE: 1 }

const writeCreate = (w: Writer, r: WatchCreateRequest): void => {
  w.bytes(1, r.key)
  w.bytes(2, r.rangeEnd)
  w.int64(3, r.startRevision)
  w.bool(4, r.progressNotify)
  w.packedEnumeration(5, r.filters, filterTypes)
  w.bool(6, r.prevKv)
  w.int64(7, r.watchId)
  w.bool(8, r.fragment)
}

const writeCancel = (w: Writer, r: WatchCancelRequest): void => {
  w.int64(1, r.watchId)
}

const writeNothing = (): void => {}

const writeWatchRequest = (w: Writer, r: WatchRequest): void => {
  // one case of the oneof: the generated encoder writes every field set, in this order
  if (r.createRequest != null) w.message(1, r.createRequest, writeCreate)
  if (r.cancelRequest != null) w.message(2, r.cancelRequest, writeCancel)
  if (r.progressRequest != null) w.message(3, r.progressRequest, writeNothing)
}

/** The encoder, falling back to the generated `generated` for what it leaves to it. */
export const watchRequestEncoder = (generated: (value: WatchRequest) => Buffer) => encoder(writeWatchRequest, generated)
