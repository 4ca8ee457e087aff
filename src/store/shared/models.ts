import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** Models and their price versions. */

type ModelRow = Tables["models"];
const MODEL_COLUMNS = [
  "id",
  "unit",
  "kind",
  "reporting_enabled",
  "created_at",
  "updated_at",
  "upstream_id",
  "upstream_model",
] as const;

export const modelById = query((db, p: { id: string }) =>
  db.selectFrom("models").selectAll().where("id", "=", p.id),
);

/** Inserts a model or replaces everything but its creation instant. */
export const upsertModel = query((db, r: ModelRow) =>
  db
    .insertInto("models")
    .values(pick(r, MODEL_COLUMNS))
    .onConflict((oc) =>
      oc.column("id").doUpdateSet((eb) => ({
        unit: eb.ref("excluded.unit"),
        kind: eb.ref("excluded.kind"),
        reporting_enabled: eb.ref("excluded.reporting_enabled"),
        updated_at: eb.ref("excluded.updated_at"),
        upstream_id: eb.ref("excluded.upstream_id"),
        upstream_model: eb.ref("excluded.upstream_model"),
      })),
    ),
);

export const allModels = query((db) => db.selectFrom("models").selectAll().orderBy("id"));

type PriceRow = Tables["model_prices"];

/** A price version; the same instant again replaces it. */
export const upsertPrice = query((db, r: PriceRow) =>
  db
    .insertInto("model_prices")
    .values(pick(r, ["model_id", "effective_from", "unit_price", "currency", "meters"]))
    .onConflict((oc) =>
      oc.columns(["model_id", "effective_from"]).doUpdateSet((eb) => ({
        unit_price: eb.ref("excluded.unit_price"),
        currency: eb.ref("excluded.currency"),
        meters: eb.ref("excluded.meters"),
      })),
    ),
);

export const pricesOfModel = query((db, p: { modelId: string }) =>
  db.selectFrom("model_prices").selectAll().where("model_id", "=", p.modelId).orderBy("effective_from"),
);

export const allPrices = query((db) =>
  db.selectFrom("model_prices").selectAll().orderBy("model_id").orderBy("effective_from"),
);
