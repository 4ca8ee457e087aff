import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  generateSecret,
  ROTATION_OVERLAP_MS,
  rotateSecrets,
  secretKey,
  signingSecrets,
  webhookHeaders,
} from "./signing.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

afterEach(() => {
  vi.useRealTimers();
});

describe("Standard Webhooks signing, checked by the standardwebhooks package", () => {
  it("reproduces the specification's test vector", () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = bytes('{"test": 2432232314}');
    const headers = webhookHeaders("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, [secret]);
    expect(headers["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1614265330_000 + 10_000);
    expect(new Webhook(secret).verify(Buffer.from(body), { ...headers })).toEqual({ test: 2432232314 });
  });

  it("fails a tampered body", () => {
    const secret = generateSecret();
    const now = Math.floor(Date.now() / 1000);
    const headers = webhookHeaders("msg_1", now, bytes('{"amount":1}'), [secret]);
    const wh = new Webhook(secret);
    expect(wh.verify('{"amount":1}', { ...headers })).toEqual({ amount: 1 });
    expect(() => wh.verify('{"amount":2}', { ...headers })).toThrow(/signature/i);
    expect(() => wh.verify('{"amount": 1}', { ...headers })).toThrow(/signature/i);
  });

  it("fails a timestamp 301 s off in either direction, passes at 299 s", () => {
    // the library reads the wall clock itself: frozen, so a step of the VM's clock between our
    // reading and its own (CI saw one of 5 s) cannot move the test across the 300 s line
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 1, 12), toFake: ["Date"] });
    const secret = generateSecret();
    const body = bytes('{"a":1}');
    const now = Math.floor(Date.now() / 1000);
    const wh = new Webhook(secret);
    expect(() => wh.verify(Buffer.from(body), { ...webhookHeaders("m", now - 301, body, [secret]) })).toThrow(
      /too old/,
    );
    expect(() => wh.verify(Buffer.from(body), { ...webhookHeaders("m", now + 301, body, [secret]) })).toThrow(
      /too new/,
    );
    expect(wh.verify(Buffer.from(body), { ...webhookHeaders("m", now - 299, body, [secret]) })).toEqual({
      a: 1,
    });
  });

  it("signs with both secrets for 24 h after a rotation, then with the new one only", () => {
    const t0 = Date.now();
    const original = { current: generateSecret(), previous: null, previousExpiresAt: null };
    const rotated = rotateSecrets(original, t0);
    expect(rotated.current).not.toBe(original.current);
    const body = bytes('{"type":"webhook.test"}');

    const during = signingSecrets(rotated, t0 + ROTATION_OVERLAP_MS - 1);
    expect(during).toEqual([rotated.current, original.current]);
    const headers = webhookHeaders("msg_rot", Math.floor(t0 / 1000), body, during);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    // a receiver holding either secret verifies
    expect(new Webhook(original.current).verify(Buffer.from(body), { ...headers })).toBeTruthy();
    expect(new Webhook(rotated.current).verify(Buffer.from(body), { ...headers })).toBeTruthy();
    // a receiver holding an unrelated secret does not
    expect(() => new Webhook(generateSecret()).verify(Buffer.from(body), { ...headers })).toThrow();

    const after = signingSecrets(rotated, t0 + ROTATION_OVERLAP_MS);
    expect(after).toEqual([rotated.current]);
    const late = webhookHeaders("msg_rot", Math.floor(t0 / 1000), body, after);
    expect(() => new Webhook(original.current).verify(Buffer.from(body), { ...late })).toThrow(/signature/i);
  });

  it("generates whsec_ secrets of 32 random bytes and refuses malformed ones", () => {
    const a = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(secretKey(a)).toHaveLength(32);
    expect(generateSecret()).not.toBe(a);
    expect(() => secretKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toThrow(/secret/);
    expect(() => secretKey("whsec_not base64!")).toThrow(/secret/);
    expect(() => webhookHeaders("m", 1, bytes("{}"), [])).toThrow();
  });
});
