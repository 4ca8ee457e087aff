import { Ajv, type ValidateFunction } from "ajv";
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

/**
 * Each route's validator is compiled on the route's first request, not at start: compiling the
 * schemas of every route up front was most of the server's start-up garbage and a good part of
 * its peak memory, for routes most processes never serve. The answer is Ajv's own, unchanged.
 */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === "body" ? strict : coercing;
  let compiled: ValidateFunction | null = null;
  const validate = (data: unknown, context?: Parameters<ValidateFunction>[1]): boolean => {
    compiled ??= ajv.compile(schema as object);
    const valid = compiled(data, context) as boolean;
    validate.errors = compiled.errors;
    return valid;
  };
  validate.errors = null as ValidateFunction["errors"];
  // Fastify passes the parent (request, part name) only to Ajv functions, which it tells by
  // `schemaEnv`: with it, Ajv may coerce or default a part's root value as before
  validate.schemaEnv = true;
  return validate as unknown as ReturnType<FastifySchemaCompiler<unknown>>;
};
