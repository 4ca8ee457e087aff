import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import type { FastifySchemaCompiler } from "fastify";

/**
 * Bodies are validated strictly: "5" is not the number 5 and true is not 1. Query strings and
 * path parameters arrive as text, so they are coerced to the schema's types.
 */
const strict = new Ajv({
  coerceTypes: false,
  useDefaults: true,
  removeAdditional: false,
  allErrors: false,
  strict: false,
});
const coercing = new Ajv({
  coerceTypes: "array",
  useDefaults: true,
  removeAdditional: false,
  allErrors: false,
  strict: false,
});
for (const ajv of [strict, coercing]) {
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  ajv.addKeyword({ keyword: "x-examples" });
}

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === "body" ? strict : coercing;
  return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
};
