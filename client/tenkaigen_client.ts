/**
 * The TenkaiGen frontend flow with supabase-js v2, as a module (docs/client.md walks through it).
 *
 *   parse-prompt ─► insert generation_jobs (client_request_id) ─► realtime.setAuth() + private Broadcast
 *   `generation_jobs:<user_id>` ─► progress/status ─► createSignedUrl(result) ;  cancel_generation_job RPC
 *
 * No polling: the database broadcasts every status/progress change. Broadcasts sent while the channel was
 * (re)joining are lost, so every `SUBSCRIBED` re-selects the watched rows ("catch-up"); updates are merged by
 * `updated_at`, so a late or duplicated message never moves a job backwards.
 *
 * It takes a signed-in `SupabaseClient<Database>` and imports only types from supabase-js; tests drive it with
 * a stub client.
 */
import type {
  REALTIME_SUBSCRIBE_STATES,
  RealtimeChannel,
  SupabaseClient,
} from "@supabase/supabase-js";
import {
  type Database,
  type GenerationJob,
  type GenerationJobRequest,
  isFinalStatus,
  isJobUpdate,
  JOB_UPDATE_EVENT,
  type JobStatus,
  jobTopic,
  type JobUpdate,
  jobUpdateFromRow,
  toGenerationJob,
} from "./generation_jobs";
import { checkInitImage, checkInitImagePath, initImagePath, INPUTS_BUCKET } from "./uploads";

// ## The supabase-js client this module drives

/** A signed-in supabase-js v2 client typed with this project's {@link Database}: `createClient<Database>(…)`. */
export type TenkaigenSupabase = SupabaseClient<Database>;

/** A PostgREST error as supabase-js returns it (`code` is the SQLSTATE; empty when the request never arrived). */
export interface PostgrestErrorLike {
  message: string;
  code: string;
  details?: string | null;
}

/** Realtime channel states passed to the `subscribe` callback. */
export type SubscribeStatus = `${REALTIME_SUBSCRIBE_STATES}`;

// ## Errors

/** Base of the errors this module throws; `code` is the SQLSTATE or a short name. */
export class TenkaigenError extends Error {
  override name = "TenkaigenError";

  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Bad input (SQLSTATE 22023 and friends). `field` is the column the message names, e.g. `width`. */
export class ValidationError extends TenkaigenError {
  override name = "ValidationError";

  constructor(message: string, code: string, readonly field: string | null) {
    super(message, code);
  }
}

/** A quota refused the job (SQLSTATE PT429, HTTP 429, message `rate_limited: …`). Try again later. */
export class RateLimitedError extends TenkaigenError {
  override name = "RateLimitedError";
}

/** No such job among the caller's jobs (SQLSTATE P0002, or no row under RLS). */
export class JobNotFoundError extends TenkaigenError {
  override name = "JobNotFoundError";
}

/** The request never got an answer (network down, offline …). Safe to retry with the same client_request_id. */
export class TransportError extends TenkaigenError {
  override name = "TransportError";
}

/** parse-prompt answered an error (`status` is its HTTP status, `code` its `error.code`). */
export class ParsePromptError extends TenkaigenError {
  override name = "ParsePromptError";

  constructor(message: string, code: string, readonly status: number) {
    super(message, code);
  }
}

/** The Realtime channel could not be joined (private channel refused, timeout). */
export class RealtimeError extends TenkaigenError {
  override name = "RealtimeError";
}

const FIELD_PREFIX = /^([a-z_][a-z0-9_]*): /;

/** Maps a PostgREST error to the module's typed errors. */
export function toTenkaigenError(error: PostgrestErrorLike): TenkaigenError {
  const { code, message } = error;
  switch (code) {
    case "22023": // invalid_parameter_value: the request trigger, message "<field>: …"
    case "23514": // check_violation
    case "23502": // not_null_violation
      return new ValidationError(message, code, FIELD_PREFIX.exec(message)?.[1] ?? null);
    case "23503": // foreign_key_violation: details "Key (style)=(x) is not present …"
      return new ValidationError(
        message,
        code,
        /^Key \((\w+)\)/.exec(error.details ?? "")?.[1] ?? null,
      );
    case "PT429":
      return new RateLimitedError(message, code);
    case "P0002":
      return new JobNotFoundError(message, code);
    case "":
      return new TransportError(message || "request failed", "transport");
    default:
      return new TenkaigenError(message, code);
  }
}

// ## Flow types

/** The product a design is for (sent to parse-prompt, stored in the job's metadata). */
export interface ProductContext {
  id?: string;
  kind?: string;
  color?: string;
  size?: string;
}

/** The answer of the parse-prompt Edge Function. */
export type ParsedPrompt =
  & {
    expandedPrompt: string;
    style: string;
    franchise: string | null;
    title: string;
    tags: string[];
  }
  & ({ source: "gemini" } | { source: "fallback"; fallbackReason: string });

/** What `cancel_generation_job` returns: what happened, or the final status the job already had. */
export type CancelResult = "canceled" | "cancel_requested" | "succeeded" | "failed";

/** How a watched job ended. */
export type JobOutcome =
  | { status: "succeeded"; update: JobUpdate; signedUrl: string }
  | { status: "failed"; update: JobUpdate; errorCode: string | null; errorMessage: string | null }
  | { status: "canceled"; update: JobUpdate };

/** A job being followed: its latest state, and a promise of how it ends. */
export interface JobWatch {
  readonly jobId: string;
  /** The newest state seen so far. */
  latest(): JobUpdate;
  /** Settles when the job reaches a final status; rejects only if the result URL cannot be signed. */
  readonly done: Promise<JobOutcome>;
  /** Stops following (the channel stays open for other jobs until {@link TenkaigenClient.close}). */
  stop(): void;
}

/** Called with every newer state of a watched job. */
export type JobUpdateListener = (update: JobUpdate) => void;

/** What {@link TenkaigenClient.generate} needs from the hero page. */
export interface GenerateInput {
  prompt: string;
  product?: ProductContext;
  /** Overrides of the job request (size, variant, seed …); `style` overrides the detected one. */
  request?: Omit<GenerationJobRequest, "prompt" | "expanded_prompt" | "client_request_id">;
}

/** An edit: a reference image and what to change (`prompt`); the job runs on variant `edit`. */
export interface EditInput {
  prompt: string;
  /** The reference image (a File from an <input type="file">, or any Blob with its MIME type). */
  image: Blob;
  /** Overrides of the job request (size, seed, style …). */
  request?: Omit<GenerationJobRequest, "prompt" | "init_image_path" | "client_request_id">;
}

/** A started edit: the uploaded input's path, the job, and its watch. */
export interface Edit {
  initImagePath: string;
  job: GenerationJob;
  watch: JobWatch;
}

/** A started generation. */
export interface Generation {
  parsed: ParsedPrompt;
  job: GenerationJob;
  watch: JobWatch;
}

/** Tunables; every one has a default. */
export interface TenkaigenClientOptions {
  /** Lifetime of result URLs, seconds (default 3600). */
  signedUrlExpiresIn?: number;
  /** Retries of an insert that got no answer, with the same client_request_id (default 2). */
  insertRetries?: number;
  /** Waits between those retries (default: 500 ms, then 1 s …); tests make it instant. */
  sleep?: (ms: number) => Promise<void>;
  /** Makes client_request_ids (default `crypto.randomUUID`). */
  newRequestId?: () => string;
  /** Told about Realtime channel trouble after the first join (realtime-js rejoins by itself). */
  onChannelStatus?: (status: SubscribeStatus, err?: Error) => void;
  /**
   * Leave the Realtime channel as soon as no job is watched and nothing {@link TenkaigenClient.hold}s it (default
   * false: the channel stays until {@link TenkaigenClient.close}). The React provider turns it on, so the
   * channel closes when the last component using it unmounts.
   */
  leaveWhenIdle?: boolean;
}

export const JOBS_TABLE = "generation_jobs";
export const RESULTS_BUCKET = "generated-designs";
export const SIGNED_URL_EXPIRES_IN_DEFAULT = 3600;
export const INSERT_RETRIES_DEFAULT = 2;

/** The metadata and sampler fields a job gets from parse-prompt's answer and the hero page's input. */
export function requestFromParsed(
  input: GenerateInput,
  parsed: ParsedPrompt,
): GenerationJobRequest {
  return {
    style: parsed.style,
    ...input.request,
    prompt: input.prompt,
    expanded_prompt: parsed.expandedPrompt,
    franchise: parsed.franchise,
    metadata: {
      title: parsed.title,
      tags: parsed.tags,
      prompt_source: parsed.source,
      ...(input.product ? { product: { ...input.product } } : {}),
      ...input.request?.metadata,
    },
  };
}

// ## The client

/** The TenkaiGen generation flow on top of a signed-in supabase-js client. */
export class TenkaigenClient {
  readonly #supabase: TenkaigenSupabase;
  readonly #options:
    & Required<Omit<TenkaigenClientOptions, "onChannelStatus">>
    & TenkaigenClientOptions;
  #feed: JobFeed | null = null;
  #closing: Promise<void> = Promise.resolve();
  #holds = 0;
  #leaveTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(supabase: TenkaigenSupabase, options: TenkaigenClientOptions = {}) {
    this.#supabase = supabase;
    this.#options = {
      signedUrlExpiresIn: SIGNED_URL_EXPIRES_IN_DEFAULT,
      insertRetries: INSERT_RETRIES_DEFAULT,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      newRequestId: () => crypto.randomUUID(),
      leaveWhenIdle: false,
      ...options,
    };
  }

  /** The whole flow: parse the prompt, insert the job, follow it. */
  async generate(input: GenerateInput, onUpdate?: JobUpdateListener): Promise<Generation> {
    const parsed = await this.parsePrompt(input.prompt, input.product);
    const job = await this.submitJob(requestFromParsed(input, parsed));
    const watch = await this.watchJob(job, onUpdate);
    return { parsed, job, watch };
  }

  /** Calls the parse-prompt Edge Function (supabase-js sends the user's JWT). */
  async parsePrompt(prompt: string, product?: ProductContext): Promise<ParsedPrompt> {
    const body: Record<string, unknown> = product ? { prompt, product } : { prompt };
    const { data, error } = await this.#supabase.functions.invoke("parse-prompt", { body });
    if (error) throw await parsePromptError(error);
    return data as ParsedPrompt;
  }

  /**
   * Inserts a job. Idempotent per `client_request_id` (one is made when missing): when the insert reached the
   * database but its answer was lost, the retry fails with 23505 and the existing row is returned instead.
   */
  async submitJob(request: GenerationJobRequest): Promise<GenerationJob> {
    const values = {
      ...request,
      client_request_id: request.client_request_id ?? this.#options.newRequestId(),
    };
    for (let attempt = 0;; attempt++) {
      const { data, error } = await this.#supabase.from(JOBS_TABLE).insert(values).select()
        .single();
      if (!error && data) return toGenerationJob(data);
      if (error?.code === "23505") return await this.#jobByRequestId(values.client_request_id);
      const mapped = toTenkaigenError(error ?? { code: "", message: "insert returned no row" });
      if (!(mapped instanceof TransportError) || attempt >= this.#options.insertRetries) {
        throw mapped;
      }
      await this.#options.sleep(500 * 2 ** attempt);
    }
  }

  /** One of the caller's jobs, fresh from the database. */
  async getJob(jobId: string): Promise<GenerationJob> {
    const { data, error } = await this.#supabase.from(JOBS_TABLE).select().eq("id", jobId)
      .maybeSingle();
    if (error) throw toTenkaigenError(error);
    if (!data) throw new JobNotFoundError(`job_id: no job ${jobId} among your jobs`, "P0002");
    return toGenerationJob(data);
  }

  /** Cancels a job: `canceled` (was queued), `cancel_requested` (running; the worker stops it) or its final status. */
  async cancelJob(jobId: string): Promise<CancelResult> {
    const { data, error } = await this.#supabase.rpc("cancel_generation_job", { job_id: jobId });
    if (error) throw toTenkaigenError(error);
    return data as CancelResult;
  }

  /** 1-based position of a queued job in claim order; null once it is not queued. */
  async queuePosition(jobId: string): Promise<number | null> {
    const { data, error } = await this.#supabase.rpc("generation_job_queue_position", {
      job_id: jobId,
    });
    if (error) throw toTenkaigenError(error);
    return typeof data === "number" ? data : null;
  }

  /**
   * Uploads an edit's reference image to `generation-inputs/<user_id>/<uuid>.<ext>` with its content type and
   * returns the path. Checked first (type, size, and `path` when given): a ValidationError names the field
   * (`init_image` or `init_image_path`) and nothing is uploaded.
   */
  async uploadInitImage(image: Blob, options: { path?: string } = {}): Promise<string> {
    const userId = await this.#userId();
    const problem = checkInitImage(image) ??
      (options.path === undefined ? null : checkInitImagePath(options.path, userId));
    if (problem) throw new ValidationError(problem.message, "22023", problem.field);
    const path = options.path ?? initImagePath(userId, image.type);
    const { error } = await this.#supabase.storage.from(INPUTS_BUCKET).upload(path, image, {
      contentType: image.type,
      upsert: false,
    });
    if (error) {
      throw new TenkaigenError(`could not upload ${path}: ${error.message}`, "storage", {
        cause: error,
      });
    }
    return path;
  }

  /** The edit flow: upload the reference image, insert the job with its `init_image_path`, follow it. */
  async submitEdit(input: EditInput, onUpdate?: JobUpdateListener): Promise<Edit> {
    const path = await this.uploadInitImage(input.image);
    const job = await this.submitJob({
      ...input.request,
      prompt: input.prompt,
      init_image_path: path,
    });
    const watch = await this.watchJob(job, onUpdate);
    return { initImagePath: path, job, watch };
  }

  /** A time-limited URL of a result image (`<user_id>/<job_id>.png` in bucket generated-designs). */
  async signedResultUrl(resultPath: string): Promise<string> {
    const { data, error } = await this.#supabase.storage.from(RESULTS_BUCKET)
      .createSignedUrl(resultPath, this.#options.signedUrlExpiresIn);
    if (error || !data) {
      throw new TenkaigenError(`could not sign ${resultPath}: ${error?.message}`, "storage");
    }
    return data.signedUrl;
  }

  /**
   * Follows a job on its owner's private Broadcast topic until it is final. `onUpdate` gets every newer state,
   * starting with the row given. On `succeeded`, `done` carries a signed URL of the image.
   */
  async watchJob(job: GenerationJob, onUpdate?: JobUpdateListener): Promise<JobWatch> {
    this.#cancelLeave();
    await this.#closing; // a channel being left is gone from realtime-js before the topic is joined again
    const feed = this.#feedFor(job.user_id);
    const watch = new Watch(
      jobUpdateFromRow(job),
      onUpdate,
      (path) => this.signedResultUrl(path),
      () => {
        feed.remove(job.id, watch);
        this.#leaveIfIdle();
      },
    );
    feed.add(job.id, watch);
    if (watch.isFinal()) {
      watch.settle();
      return watch;
    }
    const joinedBefore = feed.joined;
    try {
      await feed.join();
    } catch (error) {
      watch.stop();
      throw error;
    }
    // A first join catches up by itself (on SUBSCRIBED); a channel joined earlier needs one for this job.
    if (joinedBefore) await feed.catchUp([job.id]);
    return watch;
  }

  /** Leaves the Realtime channel. Watches still running never settle. */
  async close(): Promise<void> {
    this.#cancelLeave();
    const feed = this.#feed;
    this.#feed = null;
    if (feed) this.#closing = feed.close();
    await this.#closing;
  }

  /**
   * Keeps the channel open while held, even with no job watched (a component between two jobs), when
   * `leaveWhenIdle` is on. Returns the release; releasing twice is harmless.
   */
  hold(): () => void {
    this.#holds++;
    this.#cancelLeave();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#holds--;
      this.#leaveIfIdle();
    };
  }

  /** True while the client is joined to (or joining) its user's Realtime channel. */
  get following(): boolean {
    return this.#feed !== null;
  }

  #leaveIfIdle(): void {
    const feed = this.#feed;
    if (!this.#options.leaveWhenIdle || !feed || feed.watches.size > 0 || this.#holds > 0) return;
    // One macrotask later: a component that unmounts and mounts again in the same commit (React StrictMode,
    // a key change) holds the channel again before it is left.
    this.#cancelLeave();
    this.#leaveTimer = setTimeout(() => {
      this.#leaveTimer = null;
      if (this.#feed === feed && feed.watches.size === 0 && this.#holds === 0) void this.close();
    }, 0);
  }

  #cancelLeave(): void {
    if (this.#leaveTimer !== null) clearTimeout(this.#leaveTimer);
    this.#leaveTimer = null;
  }

  async #userId(): Promise<string> {
    const { data, error } = await this.#supabase.auth.getSession();
    const userId = data.session?.user.id;
    if (error || !userId) {
      throw new TenkaigenError("not signed in: sign in before uploading an image", "not_signed_in");
    }
    return userId;
  }

  async #jobByRequestId(clientRequestId: string): Promise<GenerationJob> {
    const { data, error } = await this.#supabase.from(JOBS_TABLE).select()
      .eq("client_request_id", clientRequestId).maybeSingle();
    if (error) throw toTenkaigenError(error);
    if (!data) {
      throw new JobNotFoundError(`no job with client_request_id ${clientRequestId}`, "P0002");
    }
    return toGenerationJob(data);
  }

  #feedFor(userId: string): JobFeed {
    if (this.#feed && this.#feed.userId !== userId) {
      throw new TenkaigenError("this client already follows another user's jobs", "wrong_user");
    }
    this.#feed ??= new JobFeed(this.#supabase, userId, this.#options.onChannelStatus);
    return this.#feed;
  }
}

// ## One Realtime channel per user, shared by the watched jobs

class JobFeed {
  /** The watches of each followed job (two components may follow the same job). */
  readonly watches = new Map<string, Set<Watch>>();
  joined = false;
  #channel: RealtimeChannel | null = null;
  #joining: Promise<void> | null = null;

  constructor(
    readonly supabase: TenkaigenSupabase,
    readonly userId: string,
    readonly onChannelStatus?: (status: SubscribeStatus, err?: Error) => void,
  ) {}

  /** Joins the private topic once; resolves on the first SUBSCRIBED. */
  join(): Promise<void> {
    this.#joining ??= this.#join().catch((error) => {
      this.#joining = null; // let the next watch try again
      throw error;
    });
    return this.#joining;
  }

  async #join(): Promise<void> {
    // Private channels authorize with the user's JWT (RLS on realtime.messages): hand it to Realtime first.
    await this.supabase.realtime.setAuth();
    await new Promise<void>((resolve, reject) => {
      const channel = this.supabase
        .channel(jobTopic(this.userId), { config: { private: true } })
        .on("broadcast", { event: JOB_UPDATE_EVENT }, (message) => this.deliver(message.payload))
        .subscribe((status, err) => {
          if (status === "SUBSCRIBED") {
            this.joined = true;
            resolve();
            // Also after every rejoin (network drop, token refresh): fetch what the broadcasts missed.
            void this.catchUp([...this.watches.keys()]);
          } else if (!this.joined) {
            // Refused (policy on realtime.messages), timed out, or closed before the first join.
            void this.supabase.removeChannel(channel);
            this.#channel = null;
            reject(
              new RealtimeError(
                `could not join ${jobTopic(this.userId)}: ${err?.message ?? status}`,
                status,
              ),
            );
          } else {
            this.onChannelStatus?.(status, err);
          }
        });
      this.#channel = channel;
    });
  }

  /** Re-selects watched rows and merges them like broadcasts. Errors are reported, not thrown. */
  async catchUp(jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    const { data, error } = await this.supabase.from(JOBS_TABLE).select().in("id", jobIds);
    if (error) {
      this.onChannelStatus?.("CHANNEL_ERROR", toTenkaigenError(error));
      return;
    }
    for (const row of data ?? []) this.deliver(jobUpdateFromRow(toGenerationJob(row)));
  }

  deliver(payload: unknown): void {
    if (!isJobUpdate(payload)) return;
    for (const watch of this.watches.get(payload.job_id) ?? []) watch.apply(payload);
  }

  add(jobId: string, watch: Watch): void {
    const watches = this.watches.get(jobId) ?? new Set<Watch>();
    watches.add(watch);
    this.watches.set(jobId, watches);
  }

  remove(jobId: string, watch: Watch): void {
    const watches = this.watches.get(jobId);
    watches?.delete(watch);
    if (watches?.size === 0) this.watches.delete(jobId);
  }

  async close(): Promise<void> {
    const channel = this.#channel;
    this.#channel = null;
    this.watches.clear();
    if (channel) await this.supabase.removeChannel(channel);
  }
}

// ## One watched job

class Watch implements JobWatch {
  readonly done: Promise<JobOutcome>;
  #state: JobUpdate;
  #resolve!: (outcome: JobOutcome) => void;
  #reject!: (error: unknown) => void;
  #settled = false;

  constructor(
    initial: JobUpdate,
    readonly onUpdate: JobUpdateListener | undefined,
    readonly signUrl: (path: string) => Promise<string>,
    readonly detach: () => void,
  ) {
    this.#state = initial;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    onUpdate?.(initial);
  }

  get jobId(): string {
    return this.#state.job_id;
  }

  latest(): JobUpdate {
    return this.#state;
  }

  isFinal(): boolean {
    return isFinalStatus(this.#state.status);
  }

  apply(update: JobUpdate): void {
    if (this.#settled || !isNewer(update, this.#state)) return;
    this.#state = update;
    this.onUpdate?.(update);
    if (this.isFinal()) this.settle();
  }

  settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.detach();
    const update = this.#state;
    switch (update.status) {
      case "succeeded":
        this.signUrl(update.result_path ?? "").then(
          (signedUrl) => this.#resolve({ status: "succeeded", update, signedUrl }),
          this.#reject,
        );
        break;
      case "failed":
        this.#resolve({
          status: "failed",
          update,
          errorCode: update.error_code,
          errorMessage: update.error_message,
        });
        break;
      default:
        this.#resolve({ status: "canceled", update });
    }
  }

  stop(): void {
    this.#settled = true;
    this.detach();
  }
}

const STATUS_RANK: Record<JobStatus, number> = {
  queued: 0,
  running: 1,
  succeeded: 2,
  failed: 2,
  canceled: 2,
};

/**
 * Whether `next` should replace `current`: a later `updated_at` wins; at the same instant (one transaction),
 * the state further along (status, then progress, then the cancel request) wins. Duplicates are ignored.
 */
export function isNewer(next: JobUpdate, current: JobUpdate): boolean {
  const byTime = timestampMicros(next.updated_at) - timestampMicros(current.updated_at);
  if (byTime !== 0) return byTime > 0;
  const byStatus = STATUS_RANK[next.status] - STATUS_RANK[current.status];
  if (byStatus !== 0) return byStatus > 0;
  if (next.progress !== current.progress) return next.progress > current.progress;
  return next.cancel_requested && !current.cancel_requested;
}

/** Microseconds since the epoch of a Postgres timestamp string (Date.parse keeps only milliseconds). */
export function timestampMicros(iso: string): number {
  const ms = Date.parse(iso);
  const fraction = /\.(\d+)/.exec(iso)?.[1] ?? "";
  return ms * 1000 + Number(fraction.padEnd(6, "0").slice(3, 6));
}

async function parsePromptError(error: unknown): Promise<ParsePromptError> {
  // supabase-js FunctionsHttpError keeps the Response in `context`; relay/fetch errors have none.
  const context = (error as { context?: unknown }).context;
  if (context instanceof Response) {
    try {
      const body = await context.json();
      const { code, message } = body?.error ?? {};
      if (typeof code === "string" && typeof message === "string") {
        return new ParsePromptError(message, code, context.status);
      }
    } catch {
      // not our JSON error shape: fall through
    }
    return new ParsePromptError(
      `parse-prompt answered HTTP ${context.status}`,
      "http_error",
      context.status,
    );
  }
  return new ParsePromptError(
    `parse-prompt could not be reached: ${(error as Error)?.message ?? String(error)}`,
    "transport",
    0,
  );
}
