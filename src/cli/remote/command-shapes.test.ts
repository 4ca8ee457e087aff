import { describe, expect, it } from "vitest";
import type { HttpAnswer } from "../../../packages/client/src/index.ts";
import { itemTexts } from "./command-shapes.ts";

const answer = (text: string): HttpAnswer => ({
  status: 200,
  headers: new Headers(),
  text,
  body: JSON.parse(text),
});

describe("itemTexts: a list's items as the server wrote them", () => {
  it("keeps every digit of an exact decimal that a float would round", () => {
    const text =
      '{"data":[{"id":"a","cost":12345678.123456789012345678},{"id":"b","cost":1e-18}],"has_more":true}';
    expect(itemTexts(answer(text))).toEqual([
      '{"id":"a","cost":12345678.123456789012345678}',
      '{"id":"b","cost":1e-18}',
    ]);
  });

  it("is not fooled by brackets, commas and escaped quotes inside strings, or by nested lists", () => {
    const items = [
      { id: "x", name: 'a "quoted", [bracketed] {braced} name\\', tags: ["p", ["q", { r: "]" }]] },
      { id: "y", name: "", tags: [] },
    ];
    const text = JSON.stringify({ data: items, has_more: false });
    expect(itemTexts(answer(text)).map((t) => JSON.parse(t))).toEqual(items);
  });

  it("an empty list has no items; another layout falls back to the parsed items", () => {
    expect(itemTexts(answer('{"data":[],"has_more":false}'))).toEqual([]);
    expect(itemTexts(answer('{"has_more":false,"data":[{"id":"z"}]}'))).toEqual(['{"id":"z"}']);
  });
});
