/**
 * Types of `public.generation_jobs` and of its Broadcast payload, as the browser sees them.
 *
 * The table types come from client/database.types.ts, generated from the migrations by scripts/gen_types (a test
 * fails when it is stale); this module narrows them where the schema's CHECKs say more than its column types.
 * {@link JobUpdate} is the Broadcast payload, `public.generation_job_update(row)`; a test compares its keys with
 * that function, so keep one field per line.
 */
import type { Database, Json } from "./database.types";

export type { Database, Json } from "./database.types";

/** A job's status (contract). `succeeded`, `failed` and `canceled` are final. */
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "canceled";

/** Every {@link JobStatus}, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = [
  "queued",
  "running",
  "succeeded",
  "failed",
  "canceled",
];

/** The statuses a job never leaves by itself (an admin may requeue). */
export const FINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

/** True for `succeeded`, `failed` and `canceled`. */
export function isFinalStatus(status: JobStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

/** A row of `public.generation_jobs` exactly as the generated {@link Database} types it. */
export type GenerationJobRow = Database["public"]["Tables"]["generation_jobs"]["Row"];

/**
 * One row of `public.generation_jobs`, as `select *` returns it to its owner: the generated row type, with
 * `status` narrowed to {@link JobStatus} (a CHECK keeps it to those values) and the columns the insert trigger
 * always resolves from the style preset (`variant`, `steps`, `true_cfg_scale`, `seed`, `negative_prompt`,
 * `resolved_prompt`; a CHECK keeps them set) typed as present. {@link toGenerationJob} checks a row at runtime.
 * Timestamps arrive as ISO 8601 strings, `bigint`/`numeric` as numbers.
 */
export type GenerationJob =
  & Omit<GenerationJobRow, ResolvedColumn | "status" | "metadata">
  & { [K in ResolvedColumn]: NonNullable<GenerationJobRow[K]> }
  & { status: JobStatus; metadata: JsonObject };

type ResolvedColumn =
  | "variant"
  | "steps"
  | "true_cfg_scale"
  | "seed"
  | "negative_prompt"
  | "resolved_prompt";

/** A JSON object (the `metadata` column). */
export type JsonObject = { [key: string]: Json | undefined };

/**
 * What a client may insert: the generated `Insert` type, i.e. exactly the columns of the column-level
 * `grant insert` (only `prompt` is required). `metadata` must be a JSON object.
 *
 * Bounds (checked in SQL, error code 22023, message `<field>: …`): prompt 1..2000 characters, expanded_prompt
 * ≤ 4000, negative_prompt ≤ 2000, width/height multiples of 16 in 256..2048, steps 1..100, true_cfg_scale 1..20,
 * seed 0..4294967295, client_request_id `[A-Za-z0-9._:-]{1,128}`, metadata a JSON object ≤ 4096 bytes,
 * init_image_path `<own user id>/<file>` in bucket `generation-inputs`, franchise 1..64 characters (a franchise
 * an admin mapped to a LoRA runs on variant bf16 with it). `style` is an id of
 * `public.generation_styles` (see supabase/functions/_shared/styles.ts); empty sampler fields take the preset's.
 */
export type GenerationJobRequest =
  & Omit<Database["public"]["Tables"]["generation_jobs"]["Insert"], "metadata">
  & { metadata?: JsonObject };

/** A style preset (`public.generation_styles`, readable by everyone): a typed style picker reads these. */
export type GenerationStyle = Database["public"]["Tables"]["generation_styles"]["Row"];

/** A model variant (`public.generation_variants`, readable by everyone). */
export type GenerationVariant = Database["public"]["Tables"]["generation_variants"]["Row"];

/**
 * A row the database returned, checked and typed as a {@link GenerationJob}. Throws when `status` is not a
 * {@link JobStatus} or a resolved column is missing (the schema changed under the client).
 */
export function toGenerationJob(row: GenerationJobRow): GenerationJob {
  const missing = RESOLVED_COLUMNS.filter((column) => row[column] === null);
  if (!(JOB_STATUSES as readonly string[]).includes(row.status) || missing.length > 0) {
    throw new TypeError(
      `generation_jobs row ${row.id} does not fit the client's type (status ${row.status}, ` +
        `null ${missing.join(", ") || "nothing"}): regenerate client/database.types.ts`,
    );
  }
  return row as unknown as GenerationJob;
}

const RESOLVED_COLUMNS: readonly ResolvedColumn[] = [
  "variant",
  "steps",
  "true_cfg_scale",
  "seed",
  "negative_prompt",
  "resolved_prompt",
];

/** The Broadcast event name of a job update (contract). */
export const JOB_UPDATE_EVENT = "job_update";

/** The private Broadcast topic carrying a user's job updates (contract): `generation_jobs:<user_id>`. */
export function jobTopic(userId: string): string {
  return `generation_jobs:${userId}`;
}

/**
 * The payload of a `job_update` broadcast: `public.generation_job_update(row)`, a projection of the row
 * without lease or worker internals. Sent on insert and when status, progress, result or the cancel request
 * changes. (`realtime.send` also adds the message's own `id`, which is not the job id.)
 */
export interface JobUpdate {
  job_id: string;
  status: JobStatus;
  progress: number;
  result_path: string | null;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  cancel_requested: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  style: string;
  variant: string;
  width: number;
  height: number;
  seed: number;
  client_request_id: string | null;
}

/** The {@link JobUpdate} a row corresponds to (what the database would broadcast for it). */
export function jobUpdateFromRow(row: GenerationJob): JobUpdate {
  return {
    job_id: row.id,
    status: row.status,
    progress: row.progress,
    result_path: row.result_path,
    error_code: row.error_code,
    error_message: row.error_message,
    attempts: row.attempts,
    cancel_requested: row.cancel_requested_at !== null,
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
    updated_at: row.updated_at,
    style: row.style,
    variant: row.variant,
    width: row.width,
    height: row.height,
    seed: row.seed,
    client_request_id: row.client_request_id,
  };
}

/** True when `value` looks like a {@link JobUpdate} (checked before trusting a broadcast). */
export function isJobUpdate(value: unknown): value is JobUpdate {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.job_id === "string" &&
    typeof v.status === "string" && (JOB_STATUSES as readonly string[]).includes(v.status) &&
    typeof v.progress === "number" &&
    typeof v.updated_at === "string";
}
