import type { FastifyReply } from "fastify";

/** OpenAI's error body: `{error: {message, type, param, code}}`. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "insufficient_quota",
  403: "permission_error",
  404: "invalid_request_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  429: "rate_limit_error",
  502: "upstream_error",
  504: "timeout_error",
};

export function openAiError(
  status: number,
  message: string,
  code: string | null = null,
  param: string | null = null,
  type?: string,
): OpenAiErrorBody {
  return {
    error: {
      message,
      type: type ?? TYPES[status] ?? (status >= 500 ? "server_error" : "invalid_request_error"),
      param,
      code,
    },
  };
}

export function sendOpenAiError(
  reply: FastifyReply,
  status: number,
  body: OpenAiErrorBody,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply.code(status).headers(headers).type("application/json").send(JSON.stringify(body));
}
