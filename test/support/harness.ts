import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import { buildApp } from "../../src/http/app.ts";
import { createServices, type ServiceOptions, type Services } from "../../src/services.ts";
import type { StoreKind, TestStore } from "./stores.ts";

export const ROOT_KEY = "test-root-key-0123456789";

/** A settable clock: tests move time explicitly. */
export class TestClock {
  constructor(public at = Date.parse("2025-06-15T12:00:00Z")) {}
  now = (): number => this.at;
  set(iso: string): void {
    this.at = Date.parse(iso);
  }
  advance(ms: number): void {
    this.at += ms;
  }
}

export interface Harness {
  services: Services;
  app: Awaited<ReturnType<typeof buildApp>>;
  testStore: TestStore;
  clock: TestClock;
  /** In-process request; `key` is sent as `Authorization: Bearer`. */
  request(opts: InjectOptions & { key?: string | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function createHarness(
  kind: StoreKind,
  options: {
    clock?: TestClock;
    realClock?: boolean;
    services?: Omit<ServiceOptions, "rootKey" | "now">;
  } = {},
): Promise<Harness> {
  const testStore = await kind.create();
  const clock = options.clock ?? new TestClock();
  const services = createServices(testStore.store, {
    ...options.services,
    rootKey: ROOT_KEY,
    now: options.realClock ? Date.now : clock.now,
  });
  const app = await buildApp(services);
  return {
    services,
    app,
    testStore,
    clock,
    async request({ key, headers, ...opts }) {
      return app.inject({
        ...opts,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(headers ?? {}) },
      } as InjectOptions);
    },
    async close() {
      await app.close();
      await services.committer.idle();
      await testStore.cleanup();
    },
  };
}

/** Asserts a status and shows the body when it differs. */
export function expectStatus(res: LightMyRequestResponse, status: number): void {
  expect(res.statusCode, `${res.statusCode} ${res.body}`).toBe(status);
}
