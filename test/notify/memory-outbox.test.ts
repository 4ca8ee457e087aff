import { MemoryOutbox } from "../support/memory-outbox.ts";
import { outboxContract } from "../support/outbox-contract.ts";

outboxContract("memory (test double)", async () => {
  const outbox = new MemoryOutbox();
  return {
    outbox,
    addEndpoint: async ({ id, url, secrets }) => void outbox.addEndpoint({ id, url, secrets }),
    enqueue: async (m, now) => outbox.enqueue(m, now),
    readMessage: async (id) => {
      const { status, nextAttemptAt, scheduleStep, attemptCount } = outbox.messages.get(id)!;
      return { status, nextAttemptAt, scheduleStep, attemptCount };
    },
    readEndpoint: async (id) => {
      const { disabledAt, failingSince } = outbox.endpoints.get(id)!;
      return { disabledAt, failingSince };
    },
    attempts: async (id) => outbox.attemptsOf(id),
    close: async () => {},
  };
});
