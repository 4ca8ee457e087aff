/**
 * The response schemas of `GET /models/usage`, copied verbatim (YAML to JSON, nothing edited) from
 * the OpenAPI document embedded in /work/shared/seeds/004_a2d0e9c846658b1f.txt. Kept apart from
 * src/http/fal/schemas.ts on purpose: the tests check the implementation against the seed, not
 * against itself. 401, 403 and 429 use the same schema as 400.
 */

export const SEED_USAGE_RESPONSE_SCHEMA = {
  type: "object",
  properties: {
    next_cursor: {
      type: ["string", "null"],
      description: "Cursor for the next page of results, null if no more pages",
    },
    has_more: {
      type: "boolean",
      description:
        "Boolean indicating if more results are available (convenience field derived from next_cursor)",
    },
    time_series: {
      type: "array",
      items: {
        type: "object",
        properties: {
          bucket: {
            type: "string",
            description: "Time bucket timestamp in user's timezone with offset (ISO8601 datetime)",
          },
          results: {
            type: "array",
            items: {
              type: "object",
              properties: {
                endpoint_id: {
                  type: "string",
                  description: "Endpoint identifier that was used (e.g., 'fal-ai/flux/dev')",
                },
                unit: {
                  type: "string",
                  description:
                    "The billing unit (e.g., 'image', 'video', or a GPU/compute unit for some models)",
                },
                quantity: {
                  type: "number",
                  minimum: 0,
                  description: "Quantity of usage in the specified billing unit",
                },
                unit_price: {
                  type: "number",
                  minimum: 0,
                  description: "Unit price used to compute charges for this line item",
                },
                cost: {
                  type: "number",
                  minimum: 0,
                  description: "Computed cost (quantity × unit_price)",
                },
                currency: {
                  type: "string",
                  minLength: 3,
                  maxLength: 3,
                  description: "Three-letter currency code (ISO 4217, e.g., 'USD')",
                },
                auth_method: {
                  type: "string",
                  description:
                    "Authentication method label (e.g., 'Key 1', 'Key 2', 'User token'). Only populated when 'auth_method' is included in expand parameter.",
                },
              },
              required: ["endpoint_id", "unit", "quantity", "unit_price", "cost", "currency"],
              description: "Usage line item with billing details",
            },
            description: "Usage records for this time bucket",
          },
        },
        required: ["bucket", "results"],
        description: "Time bucket with grouped usage records",
      },
      description:
        "Time series usage data grouped by time bucket (when expand includes 'time_series'). Each bucket contains all usage records for that time period.",
    },
    summary: {
      type: "array",
      items: {
        type: "object",
        properties: {
          endpoint_id: {
            type: "string",
            description: "Endpoint identifier that was used (e.g., 'fal-ai/flux/dev')",
          },
          unit: {
            type: "string",
            description: "The billing unit (e.g., 'image', 'video', or a GPU/compute unit for some models)",
          },
          quantity: {
            type: "number",
            minimum: 0,
            description: "Quantity of usage in the specified billing unit",
          },
          unit_price: {
            type: "number",
            minimum: 0,
            description: "Unit price used to compute charges for this line item",
          },
          cost: {
            type: "number",
            minimum: 0,
            description: "Computed cost (quantity × unit_price)",
          },
          currency: {
            type: "string",
            minLength: 3,
            maxLength: 3,
            description: "Three-letter currency code (ISO 4217, e.g., 'USD')",
          },
          auth_method: {
            type: "string",
            description:
              "Authentication method label (e.g., 'Key 1', 'Key 2', 'User token'). Only populated when 'auth_method' is included in expand parameter.",
          },
        },
        required: ["endpoint_id", "unit", "quantity", "unit_price", "cost", "currency"],
        description: "Aggregate usage statistics for the entire date range",
      },
      description: "Aggregate statistics (when expand includes 'summary')",
    },
  },
  required: ["next_cursor", "has_more"],
  description: "Response containing usage data with pagination support",
} as const;

export const SEED_ERROR_RESPONSE_SCHEMA = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: {
        type: {
          type: "string",
          enum: [
            "authorization_error",
            "validation_error",
            "not_found",
            "rate_limited",
            "server_error",
            "not_implemented",
          ],
          description: "The category of error that occurred",
        },
        message: {
          type: "string",
          description: "Human-readable error message",
        },
        docs_url: {
          type: "string",
          format: "uri",
          description: "Link to relevant documentation",
        },
        request_id: {
          type: "string",
          description: "Unique request identifier for debugging",
        },
      },
      required: ["type", "message"],
      description: "Error details",
    },
  },
  required: ["error"],
  description: "Standard error response format",
} as const;
