import { describe, expect, it } from "vitest";
import {
  checkEndpointUrl,
  guardedLookup,
  isNonPublicAddress,
  parseEndpointUrl,
  type ResolveHost,
  refusedLiteralHost,
} from "./url-policy.ts";

const fixed =
  (table: Record<string, string[]>): ResolveHost =>
  async (host) => {
    const list = table[host];
    if (!list) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };

describe("endpoint URL syntax", () => {
  it.each([
    "https://hooks.example.com/tally",
    "http://localhost:3000/hook",
    "http://192.168.1.20/hook?x=1",
    "https://[2001:db8::1]/hook",
  ])("accepts %s", (url) => {
    expect(parseEndpointUrl(url).href).toContain("/hook");
  });

  it.each([
    ["ftp://example.com/hook", /http or https/],
    ["javascript:alert(1)", /http or https/],
    ["file:///etc/passwd", /http or https/],
    ["https://user:pw@example.com/hook", /user name or password/],
    ["https://token@example.com/hook", /user name or password/],
    ["/relative/hook", /absolute/],
    ["https://example.com/hook#frag", /fragment/],
    ["", /http or https URL/],
  ])("refuses %s naming the url field", (url, reason) => {
    expect(() => parseEndpointUrl(url)).toThrow(reason);
    expect(() => parseEndpointUrl(url)).toThrow(/^url: /);
  });

  it("refuses a non-string and an overlong URL", () => {
    expect(() => parseEndpointUrl(42)).toThrow(/url/);
    expect(() => parseEndpointUrl(`https://example.com/${"a".repeat(2100)}`)).toThrow(/2048/);
  });
});

describe("address classes", () => {
  it.each([
    "127.0.0.1",
    "127.9.9.9",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.10",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",
    "fe80::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:a00:1",
    "not-an-ip",
  ])("%s is not public", (address) => {
    expect(isNonPublicAddress(address)).toBe(true);
  });

  it.each(["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])(
    "%s is public",
    (address) => {
      expect(isNonPublicAddress(address)).toBe(false);
    },
  );
});

describe("TALLY_WEBHOOK_PRIVATE", () => {
  const dns = fixed({
    "public.example": ["93.184.216.34"],
    "split.example": ["93.184.216.34", "10.0.0.5"],
    "v6local.example": ["2606:4700::1111", "::1"],
    "internal.example": ["192.168.1.5"],
  });

  it("allows private and loopback receivers by default, without resolving", async () => {
    const never: ResolveHost = async () => {
      throw new Error("must not resolve under allow");
    };
    await expect(checkEndpointUrl("http://127.0.0.1:9000/h", "allow", never)).resolves.toBeInstanceOf(URL);
    await expect(checkEndpointUrl("http://internal.example/h", "allow", never)).resolves.toBeInstanceOf(URL);
  });

  it("under deny checks every address the host resolves to", async () => {
    await expect(checkEndpointUrl("https://public.example/h", "deny", dns)).resolves.toBeInstanceOf(URL);
    await expect(checkEndpointUrl("https://split.example/h", "deny", dns)).rejects.toThrow(/10\.0\.0\.5/);
    await expect(checkEndpointUrl("https://v6local.example/h", "deny", dns)).rejects.toThrow(/::1/);
    await expect(checkEndpointUrl("https://internal.example/h", "deny", dns)).rejects.toThrow(/private/);
    await expect(checkEndpointUrl("https://nowhere.example/h", "deny", dns)).rejects.toThrow(
      /does not resolve/,
    );
  });

  it("under deny refuses address literals, in every spelling the URL parser accepts", async () => {
    for (const url of [
      "http://127.0.0.1/h",
      "http://2130706433/h",
      "http://0x7f.1/h",
      "http://[::1]/h",
      "http://[::ffff:127.0.0.1]/h",
      "http://169.254.169.254/latest",
    ]) {
      await expect(checkEndpointUrl(url, "deny", dns), url).rejects.toThrow(/private or loopback/);
      expect(refusedLiteralHost(new URL(url), "deny"), url).toMatch(/private or loopback/);
      expect(refusedLiteralHost(new URL(url), "allow"), url).toBeNull();
    }
    expect(refusedLiteralHost(new URL("http://8.8.8.8/h"), "deny")).toBeNull();
  });

  it("the send-time lookup refuses a name that resolves to loopback under deny, passes it under allow", async () => {
    const lookup = (policy: "allow" | "deny") =>
      new Promise<unknown>((resolve, reject) =>
        guardedLookup(policy)("localhost", { all: false }, (err, address) =>
          err ? reject(err) : resolve(address),
        ),
      );
    await expect(lookup("deny")).rejects.toMatchObject({ code: "ERR_WEBHOOK_PRIVATE_ADDRESS" });
    await expect(lookup("allow")).resolves.toMatch(/^(127\.0\.0\.1|::1)$/);
  });
});
