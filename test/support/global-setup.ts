import { prepareStart } from "./server-process.ts";

/** vitest's global setup: the server the tests start as child processes is built once, as `npm start` builds it. */
export default function setup(): void {
  prepareStart();
}
