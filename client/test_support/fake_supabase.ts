// A stub supabase-js client that behaves like the database (validation 22023, quota PT429, unique
// client_request_id 23505, column privileges 42501, Broadcast on every change) and like Storage (folder policy).
// Its error codes and messages are the database's: client/fixtures/database_errors.json lists them, and both
// client/database_errors.test.ts (this stub) and tests/client/test_database_errors.py (the real schema) check them.
import assert from "node:assert/strict";
import {
  type GenerationJob,
  type GenerationJobRequest,
  jobTopic,
  type JobUpdate,
  jobUpdateFromRow,
} from "../generation_jobs";
import { TenkaigenClient, type TenkaigenSupabase } from "../tenkaigen_client";
import type { ParsePromptResult } from "../../supabase/functions/parse-prompt/contract.ts";

export const USER_ID = "5b0f8a1e-6c2d-4e3f-9a1b-2c3d4e5f6a7b";

/** The request columns of the column-level `grant insert` (the generated Insert type's keys). */
const INSERTABLE: readonly string[] = [
  "prompt",
  "expanded_prompt",
  "negative_prompt",
  "style",
  "variant",
  "width",
  "height",
  "steps",
  "true_cfg_scale",
  "seed",
  "init_image_path",
  "franchise",
  "client_request_id",
  "metadata",
];

// ## A stub supabase-js client --------------------------------------------------------------------------------

export type PgError = {
  message: string;
  code: string;
  details: string | null;
  hint: string | null;
};
type Answer<T> = { data: T | null; error: PgError | null };

export const pgError = (code: string, message: string, details: string | null = null): PgError => ({
  code,
  message,
  details,
  hint: null,
});
export const TRANSPORT_ERROR = pgError("", "TypeError: fetch failed");

type StatusCallback = (status: string, err?: Error) => void;

export class FakeChannel {
  readonly bindings: { type: string; event: string; callback: (message: unknown) => void }[] = [];
  statusCallback: StatusCallback | null = null;
  removed = false;

  constructor(readonly fake: FakeSupabase, readonly topic: string, readonly options: unknown) {}

  on(type: string, filter: { event: string }, callback: (message: unknown) => void): this {
    this.bindings.push({ type, event: filter.event, callback });
    return this;
  }

  subscribe(callback: StatusCallback): this {
    assert.equal(this.statusCallback, null, "subscribe is called once per channel");
    this.statusCallback = callback;
    const status = this.fake.joinStatus;
    queueMicrotask(() =>
      callback(status, status === "SUBSCRIBED" ? undefined : new Error("denied"))
    );
    return this;
  }

  /** The server sends a broadcast on this channel. */
  receive(event: string, payload: unknown): void {
    for (const binding of this.bindings) {
      if (binding.type === "broadcast" && binding.event === event) {
        binding.callback({ type: "broadcast", event, payload });
      }
    }
  }

  /** The socket came back and realtime-js rejoined the channel. */
  rejoin(): void {
    this.statusCallback?.("SUBSCRIBED");
  }
}

/** Chainable query builder for `generation_jobs`: insert().select().single(), select().eq().maybeSingle(), select().in(). */
export class FakeQuery implements PromiseLike<Answer<GenerationJob[]>> {
  #insert: GenerationJobRequest | null = null;
  #filters: [keyof GenerationJob, string[]][] = [];

  constructor(readonly fake: FakeSupabase) {}

  insert(values: GenerationJobRequest): this {
    this.#insert = values;
    return this;
  }

  select(): this {
    return this;
  }

  eq(column: keyof GenerationJob, value: string): this {
    this.#filters.push([column, [value]]);
    return this;
  }

  in(column: keyof GenerationJob, values: string[]): this {
    this.#filters.push([column, values]);
    return this;
  }

  single(): Promise<Answer<GenerationJob>> {
    assert.ok(this.#insert, "single() is only used after insert()");
    return Promise.resolve(this.fake.insert(this.#insert));
  }

  maybeSingle(): Promise<Answer<GenerationJob>> {
    this.fake.log.push(
      `select one ${this.#filters.map(([c, v]) => `${c}=${v.join(",")}`).join(" ")}`,
    );
    const rows = this.#rows();
    return Promise.resolve({ data: rows[0] ?? null, error: null });
  }

  then<A = Answer<GenerationJob[]>, B = never>(
    onfulfilled?: ((value: Answer<GenerationJob[]>) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): PromiseLike<A | B> {
    this.fake.log.push(`select ${this.#filters.map(([c, v]) => `${c}=${v.join(",")}`).join(" ")}`);
    return Promise.resolve({ data: this.#rows(), error: null }).then(onfulfilled, onrejected);
  }

  #rows(): GenerationJob[] {
    return this.fake.rows
      .filter((row) => row.user_id === this.fake.userId)
      .filter((row) =>
        this.#filters.every(([column, values]) => values.includes(String(row[column])))
      )
      .map((row) => structuredClone(row));
  }
}

/** The stub client. Its rows, errors and broadcasts follow the migrations' contract. */
export class FakeSupabase {
  readonly userId = USER_ID;
  readonly rows: GenerationJob[] = [];
  readonly channels: FakeChannel[] = [];
  readonly log: string[] = [];
  readonly invokes: { name: string; body: unknown }[] = [];
  parsePrompt: () => { data: unknown; error: unknown } = () => ({
    data: {
      expandedPrompt: "a fox astronaut, centered composition",
      style: "watercolor",
      franchise: null,
      title: "Fox Astronaut",
      tags: ["fox", "space"],
      source: "fallback",
      fallbackReason: "no_api_key",
    } satisfies ParsePromptResult,
    error: null,
  });
  joinStatus = "SUBSCRIBED";
  /** Objects in Storage, by `bucket/path`. */
  readonly objects = new Map<string, { size: number; contentType: string }>();
  signedIn = true;
  /** Queue of failures for the next inserts: "lost-answer" inserts the row but the answer never arrives. */
  insertFaults: ("lost-answer" | "unreachable")[] = [];
  activeJobLimit = 3;
  hourlyJobLimit = 30;
  broadcastsDropped = false;
  #clock = Date.parse("2026-11-25T10:00:00Z");
  #ids = 0;

  readonly functions = {
    invoke: (name: string, options: { body: unknown }) => {
      this.invokes.push({ name, body: options.body });
      this.log.push(`invoke ${name}`);
      return Promise.resolve(this.parsePrompt());
    },
  };

  readonly auth = {
    getSession: () =>
      Promise.resolve({
        data: { session: this.signedIn ? { user: { id: this.userId } } : null },
        error: null,
      }),
  };

  readonly realtime = {
    setAuth: () => {
      this.log.push("setAuth");
      return Promise.resolve();
    },
  };

  readonly storage = {
    from: (bucket: string) => ({
      upload: (path: string, body: Blob, options: { contentType?: string; upsert?: boolean }) => {
        this.log.push(`upload ${bucket}/${path} ${options.contentType} ${body.size}`);
        // Storage's folder policy on generation-inputs: only the caller's own folder
        if (path.split("/")[0] !== this.userId) {
          return Promise.resolve({
            data: null,
            error: { message: "new row violates row-level security policy", statusCode: "403" },
          });
        }
        this.objects.set(`${bucket}/${path}`, {
          size: body.size,
          contentType: options.contentType ?? "",
        });
        return Promise.resolve({ data: { path, fullPath: `${bucket}/${path}` }, error: null });
      },
      createSignedUrl: (path: string, expiresIn: number) => {
        this.log.push(`sign ${bucket}/${path} ${expiresIn}`);
        return Promise.resolve({
          data: {
            signedUrl:
              `https://project.supabase.co/storage/v1/object/sign/${bucket}/${path}?token=t`,
          },
          error: null,
        });
      },
    }),
  };

  from(table: string): FakeQuery {
    assert.equal(table, "generation_jobs");
    return new FakeQuery(this);
  }

  channel(topic: string, options: unknown): FakeChannel {
    this.log.push(`channel ${topic}`);
    const channel = new FakeChannel(this, topic, options);
    this.channels.push(channel);
    return channel;
  }

  removeChannel(channel: FakeChannel): Promise<"ok"> {
    channel.removed = true;
    this.log.push(`removeChannel ${channel.topic}`);
    return Promise.resolve("ok");
  }

  rpc(fn: string, args: { job_id: string }): Promise<Answer<unknown>> {
    this.log.push(`rpc ${fn}`);
    const row = this.rows.find((r) => r.id === args.job_id && r.user_id === this.userId);
    if (fn === "cancel_generation_job") {
      if (!row) {
        return Promise.resolve({
          data: null,
          error: pgError("P0002", `job_id: no job ${args.job_id} among your jobs`),
        });
      }
      if (row.status === "queued") {
        this.update(row.id, {
          status: "canceled",
          finished_at: this.#now(),
          cancel_requested_at: this.#now(),
        });
        return Promise.resolve({ data: "canceled", error: null });
      }
      if (row.status === "running") {
        this.update(row.id, { cancel_requested_at: this.#now() });
        return Promise.resolve({ data: "cancel_requested", error: null });
      }
      return Promise.resolve({ data: row.status, error: null });
    }
    if (fn === "generation_job_queue_position") {
      const queued = this.rows.filter((r) => r.status === "queued");
      const index = row?.status === "queued" ? queued.indexOf(row) : -1;
      return Promise.resolve({ data: index < 0 ? null : index + 1, error: null });
    }
    throw new Error(`unexpected rpc ${fn}`);
  }

  /**
   * What the database does on insert, in its order: column privileges (42501), the request trigger (22023,
   * `<field>: …`), the quota trigger (PT429; a repeated client_request_id skips it), the unique index (23505),
   * then defaults and the broadcast. Messages are the database's: client/fixtures/database_errors.json holds
   * them, and a Python test provokes each one on the real schema.
   */
  insert(values: GenerationJobRequest): Answer<GenerationJob> {
    this.log.push(`insert ${values.client_request_id}`);
    const fault = this.insertFaults.shift();
    if (fault === "unreachable") return { data: null, error: TRANSPORT_ERROR };
    const refused = this.#refuse(values);
    if (refused) return { data: null, error: refused };
    const width = values.width ?? 1024;
    const style = values.style ?? "none";
    const now = this.#now();
    const row: GenerationJob = {
      id: `00000000-0000-4000-8000-${String(++this.#ids).padStart(12, "0")}`,
      user_id: this.userId,
      client_request_id: values.client_request_id ?? null,
      prompt: values.prompt,
      expanded_prompt: values.expanded_prompt ?? null,
      negative_prompt: values.negative_prompt ?? "",
      style,
      variant: values.variant ?? "lightning-8",
      width,
      height: values.height ?? 1024,
      steps: values.steps ?? 8,
      true_cfg_scale: values.true_cfg_scale ?? 1,
      seed: values.seed ?? 1234,
      init_image_path: values.init_image_path ?? null,
      franchise: values.franchise ?? null,
      metadata: values.metadata ?? {},
      resolved_prompt: values.expanded_prompt ?? values.prompt,
      lora: null,
      lora_scale: null,
      status: "queued",
      progress: 0,
      priority: 0,
      attempts: 0,
      claims: 0,
      max_attempts: 3,
      run_after: now,
      cancel_requested_at: null,
      locked_by: null,
      lease_expires_at: null,
      error_code: null,
      error_message: null,
      created_at: now,
      started_at: null,
      finished_at: null,
      updated_at: now,
      result_path: null,
      result_bytes: null,
      backend: null,
      backend_call_id: null,
      gpu_seconds: null,
      cost_usd: null,
    };
    this.rows.push(row);
    this.#broadcast(row);
    if (fault === "lost-answer") return { data: null, error: TRANSPORT_ERROR };
    return { data: structuredClone(row), error: null };
  }

  #refuse(values: GenerationJobRequest): PgError | null {
    const denied = Object.keys(values).filter((column) => !INSERTABLE.includes(column));
    if (denied.length > 0) return pgError("42501", "permission denied for table generation_jobs");
    if (!/\S/.test(values.prompt ?? "")) return pgError("22023", "prompt: must not be empty");
    for (const side of ["width", "height"] as const) {
      const size = values[side] ?? 1024;
      if (size < 256 || size > 2048 || size % 16 !== 0) {
        return pgError(
          "22023",
          `${side}: must be a multiple of 16 between 256 and 2048 (got ${size})`,
        );
      }
    }
    if (typeof values.steps === "number" && (values.steps < 1 || values.steps > 100)) {
      return pgError("22023", `steps: must be between 1 and 100 (got ${values.steps})`);
    }
    const path = values.init_image_path;
    if (typeof path === "string") {
      if (path.split("/")[0] !== this.userId || path.split("/").length !== 2) {
        return pgError(
          "22023",
          "init_image_path: must be <your user id>/<file name> in bucket generation-inputs",
        );
      }
      if (!this.objects.has(`generation-inputs/${path}`)) {
        return pgError("22023", `init_image_path: no object ${path} in bucket generation-inputs`);
      }
    }
    const style = values.style ?? "none";
    if (!["none", "anime", "watercolor"].includes(style)) {
      return pgError("22023", `style: unknown style '${style}'`);
    }
    const repeated = typeof values.client_request_id === "string" &&
      this.rows.some((r) => r.client_request_id === values.client_request_id);
    if (!repeated) {
      const active = this.rows.filter((r) => ["queued", "running"].includes(r.status)).length;
      if (active >= this.activeJobLimit) {
        return pgError(
          "PT429",
          `rate_limited: at most ${this.activeJobLimit} active jobs per user (you have ${active})`,
        );
      }
      if (this.rows.length >= this.hourlyJobLimit) { // every stub row was created in the last hour
        return pgError(
          "PT429",
          `rate_limited: at most ${this.hourlyJobLimit} jobs per hour per user`,
        );
      }
    }
    if (repeated) {
      // under row-level security PostgreSQL leaves the key's values out of the detail
      return pgError(
        "23505",
        'duplicate key value violates unique constraint "generation_jobs_client_request_id_key"',
      );
    }
    return null;
  }

  /** A worker changes a job (through queue.* functions): the trigger broadcasts the new projection. */
  update(jobId: string, patch: Partial<GenerationJob>): JobUpdate {
    const row = this.rows.find((r) => r.id === jobId)!;
    Object.assign(row, patch, { updated_at: this.#now() });
    return this.#broadcast(row);
  }

  /** Runs a job to success the way the worker does, one broadcast per step. */
  succeed(jobId: string): void {
    const row = this.rows.find((r) => r.id === jobId)!;
    this.update(jobId, {
      status: "running",
      attempts: 1,
      claims: 1,
      started_at: this.#now(),
      locked_by: "w1",
    });
    this.update(jobId, { progress: 0.5 });
    this.update(jobId, {
      status: "succeeded",
      progress: 1,
      finished_at: this.#now(),
      locked_by: null,
      result_path: `${row.user_id}/${row.id}.png`,
    });
  }

  #broadcast(row: GenerationJob): JobUpdate {
    // public.generation_job_update(row), plus the message id realtime.send adds.
    const payload = { ...jobUpdateFromRow(row), id: crypto.randomUUID() };
    if (!this.broadcastsDropped) {
      for (const channel of this.channels) {
        if (!channel.removed && channel.topic === jobTopic(row.user_id)) {
          channel.receive("job_update", payload);
        }
      }
    }
    return payload;
  }

  /** Postgres-style timestamps, microseconds included, one millisecond apart. */
  #now(): string {
    this.#clock += 1;
    return new Date(this.#clock).toISOString().replace("Z", "123+00:00");
  }
}

export interface Setup {
  fake: FakeSupabase;
  client: TenkaigenClient;
  sleeps: number[];
}

export function setup(
  options: { requestIds?: string[]; leaveWhenIdle?: boolean } = {},
): Setup {
  const fake = new FakeSupabase();
  const sleeps: number[] = [];
  const ids = [...(options.requestIds ?? ["req-1", "req-2", "req-3", "req-4"])];
  const client = new TenkaigenClient(fake as unknown as TenkaigenSupabase, {
    sleep: (ms) => (sleeps.push(ms), Promise.resolve()),
    newRequestId: () => ids.shift()!,
    leaveWhenIdle: options.leaveWhenIdle ?? false,
  });
  return { fake, client, sleeps };
}

export const tick = (): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, 0));
