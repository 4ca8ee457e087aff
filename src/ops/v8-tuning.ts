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
