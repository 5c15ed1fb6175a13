/**
 * Types of `public.generation_jobs` and of its Broadcast payload, as the browser sees them.
 *
 * Source of truth: supabase/migrations (`…_create_generation_jobs.sql`, `…_add_client_api.sql`,
 * `…_add_wakeups_and_realtime.sql`). A Python test compares the fields of {@link GenerationJob} with the table's
 * columns, so keep one field per line. Timestamps arrive as ISO 8601 strings, `bigint`/`numeric` as numbers.
 */

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

/** A JSON value (the `metadata` column). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * One row of `public.generation_jobs`, as `select *` returns it to its owner.
 *
 * `variant`, `steps`, `true_cfg_scale`, `seed`, `negative_prompt` and `resolved_prompt` are nullable columns,
 * but the insert trigger resolves them from the style preset and a CHECK keeps them set, so a row always has them.
 */
export interface GenerationJob {
  id: string;
  user_id: string;
  client_request_id: string | null;
  prompt: string;
  expanded_prompt: string | null;
  negative_prompt: string;
  style: string;
  variant: string;
  width: number;
  height: number;
  steps: number;
  true_cfg_scale: number;
  seed: number;
  init_image_path: string | null;
  franchise: string | null;
  metadata: { [key: string]: Json };
  resolved_prompt: string;
  lora: string | null;
  lora_scale: number | null;
  status: JobStatus;
  progress: number;
  priority: number;
  attempts: number;
  max_attempts: number;
  run_after: string;
  cancel_requested_at: string | null;
  locked_by: string | null;
  lease_expires_at: string | null;
  error_code: string | null;
  error_message: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  result_path: string | null;
  result_bytes: number | null;
  backend: string | null;
  backend_call_id: string | null;
  gpu_seconds: number | null;
  cost_usd: number | null;
}

/**
 * What a client may insert (the column-level `grant insert`): only `prompt` is required.
 *
 * Bounds (checked in SQL, error code 22023, message `<field>: …`): prompt 1..2000 characters, expanded_prompt
 * ≤ 4000, negative_prompt ≤ 2000, width/height multiples of 16 in 256..2048, steps 1..100, true_cfg_scale 1..20,
 * seed 0..4294967295, client_request_id `[A-Za-z0-9._:-]{1,128}`, metadata a JSON object ≤ 4096 bytes,
 * init_image_path `<own user id>/<file>` in bucket `generation-inputs`, franchise 1..64 characters (a franchise
 * an admin mapped to a LoRA runs on variant bf16 with it). `style` is an id of
 * `public.generation_styles` (see supabase/functions/_shared/styles.ts); empty sampler fields take the preset's.
 */
export interface GenerationJobRequest {
  prompt: string;
  expanded_prompt?: string | null;
  negative_prompt?: string | null;
  style?: string;
  variant?: string | null;
  width?: number;
  height?: number;
  steps?: number | null;
  true_cfg_scale?: number | null;
  seed?: number | null;
  init_image_path?: string | null;
  franchise?: string | null;
  client_request_id?: string | null;
  metadata?: { [key: string]: Json };
}

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

/**
 * The slice of the database schema the client uses, in the shape `supabase gen types typescript` writes, for
 * `createClient<Database>(url, anonKey)`: typed `from("generation_jobs")` and typed RPCs.
 */
export type Database = {
  public: {
    Tables: {
      generation_jobs: {
        Row: { [K in keyof GenerationJob]: GenerationJob[K] };
        Insert: { [K in keyof GenerationJobRequest]: GenerationJobRequest[K] };
        Update: { [K in never]: never };
        Relationships: [];
      };
    };
    Views: { [K in never]: never };
    Functions: {
      cancel_generation_job: { Args: { job_id: string }; Returns: string };
      generation_job_queue_position: { Args: { job_id: string }; Returns: number | null };
    };
    Enums: { [K in never]: never };
    CompositeTypes: { [K in never]: never };
  };
};
