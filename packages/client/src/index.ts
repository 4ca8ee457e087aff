export {
  MAX_BATCH,
  type ShutdownResult,
  TallyClient,
  type TallyClientOptions,
  TallyClosedError,
  TallyQueueFullError,
} from "./client.ts";
export {
  backoffDelay,
  DEFAULT_RETRY,
  errorMessage,
  type HttpAnswer,
  type HttpOptions,
  type RequestOptions,
  type RetryPolicy,
  retryAfterMs,
  TallyAbortError,
  TallyError,
  TallyHttp,
  TallyNetworkError,
} from "./http.ts";
export { readSpool } from "./spool.ts";
export type * from "./types.ts";
export { uuidv7 } from "./uuid.ts";
