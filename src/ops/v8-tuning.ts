import { setFlagsFromString } from "node:v8";

/**
 * Imported first by `main.ts`: V8 settings for a long-running server, set before anything else
 * runs.
 *
 * `--no-allocation-site-pretenuring`: V8 may decide, from a moment when many young objects
 * survived (start-up, a burst queued behind a durable commit), that an allocation site's objects
 * are long-lived, and from then on allocate them straight in the old generation. Tally's
 * per-request objects are not long-lived, so a server that made that decision promoted about
 * 4 KB per license report into the old generation, ran a full collection every 3 s (heap
 * 35 -> 140 MB -> 35 MB) and spent ~1.5x the CPU per request, for the rest of its life. It
 * happened to 5 of 19 servers started alike, and to none of 19 with the flag (bench report
 * load, `--trace-gc`). Decision 0015 has the measurements.
 *
 * The young generation keeps V8's default size: a smaller one (`--max-semi-space-size=8`, which
 * only the command line can set) saved 16 MB of RSS but cost batch ingest 5-8 % and the gateway
 * 3.5 % of their throughput (decision 0015).
 */
setFlagsFromString("--no-allocation-site-pretenuring");

/**
 * `--heap-growing-percent=100`: the old generation may grow to twice what the last full collection
 * left, instead of V8's own factor of up to four. Under load Tally promoted about 2.4 KB a request
 * that is garbage soon after (events and settlements waiting up to 25 ms to share a durable
 * commit, decision 0013; 0.75 KB since the spreads went, decision 0021), and with V8's factor the
 * old generation filled with it to 164 MB over 54 MB live. Gateway load (`--trace-gc-nvp`, 11 s at 50 connections): peak RSS 243-271 MB
 * instead of 355-376, 6-8 full collections instead of 3; paired slices against the same build
 * without the flag: CPU per request 1.007x (gateway) and 1.016x (license report), req/s
 * 1.004x and 0.997x. The factor follows the live size, so a large installation's caches only
 * make the collections rarer; it never caps the heap.
 */
setFlagsFromString("--heap-growing-percent=100");
