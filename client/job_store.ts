/**
 * Framework-free stores behind the React hooks (client/react.ts): each holds one snapshot, tells subscribers
 * when it changes (the `useSyncExternalStore` contract), and ties a job's Realtime subscription to
 * `start()`/`stop()`, which the hooks call on mount and unmount. No timers, no polling: a job's state comes
 * from one select, then from broadcasts; every rejoin of the channel re-selects (TenkaigenClient's catch-up).
 */
import type { GenerationJob, JobUpdate } from "./generation_jobs";
import type {
  CancelResult,
  GenerateInput,
  JobOutcome,
  JobWatch,
  ParsedPrompt,
  TenkaigenClient,
} from "./tenkaigen_client";
import { requestFromParsed, TenkaigenError } from "./tenkaigen_client";

/** A store the hooks read with `useSyncExternalStore`. */
export interface ExternalStore<T> {
  subscribe(listener: () => void): () => void;
  getSnapshot(): T;
}

class Snapshots<T> implements ExternalStore<T> {
  #snapshot: T;
  readonly #listeners = new Set<() => void>();

  constructor(initial: T) {
    this.#snapshot = initial;
  }

  readonly subscribe = (listener: () => void): () => void => {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  };

  readonly getSnapshot = (): T => this.#snapshot;

  protected set(patch: Partial<T>): void {
    this.#snapshot = { ...this.#snapshot, ...patch };
    for (const listener of [...this.#listeners]) listener();
  }
}

/** Resolves to null when the current run is abandoned (stop, reset, a newer run), so awaits never hang. */
class Abandon {
  #resolve: (() => void) | null = null;

  next(): Promise<null> {
    this.now();
    return new Promise((resolve) => (this.#resolve = () => resolve(null)));
  }

  now(): void {
    this.#resolve?.();
    this.#resolve = null;
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new TenkaigenError(String(error), "unknown");
}

// ## One job, by id: useGenerationJob

/** What useGenerationJob returns. */
export interface JobSnapshot {
  jobId: string | null;
  /** True until the first state of the job is known. */
  loading: boolean;
  /** The newest state of the job (from the first select, then from broadcasts). */
  job: JobUpdate | null;
  /** How the job ended, with a signed URL of the image when it succeeded. */
  outcome: JobOutcome | null;
  /** Why the job cannot be followed (not found, channel refused …). */
  error: Error | null;
}

/** Follows one job while started: select it, join the channel, merge updates, sign the result. */
export class JobStore extends Snapshots<JobSnapshot> {
  #run = 0;
  readonly #abandon = new Abandon();
  #watch: JobWatch | null = null;
  #release: (() => void) | null = null;

  constructor(readonly client: TenkaigenClient, readonly jobId: string) {
    super({ jobId, loading: true, job: null, outcome: null, error: null });
  }

  /** Subscribes (on mount). Starting again after stop() re-selects the job and joins again. */
  start(): void {
    if (this.#release) return;
    const run = ++this.#run;
    this.#release = this.client.hold();
    void this.#follow(run);
  }

  /** Unsubscribes (on unmount): the watch stops, and the channel closes when nothing else uses it. */
  stop(): void {
    this.#run++;
    this.#abandon.now();
    this.#watch?.stop();
    this.#watch = null;
    this.#release?.();
    this.#release = null;
  }

  /** Cancels the job (see TenkaigenClient.cancelJob); the broadcast that follows updates the snapshot. */
  cancel(): Promise<CancelResult> {
    return this.client.cancelJob(this.jobId);
  }

  async #follow(run: number): Promise<void> {
    const abandoned = this.#abandon.next();
    try {
      const row = await this.client.getJob(this.jobId);
      if (run !== this.#run) return;
      const watch = await this.client.watchJob(row, (job) => {
        if (run === this.#run) this.set({ job, loading: false });
      });
      if (run !== this.#run) {
        watch.stop();
        return;
      }
      this.#watch = watch;
      const outcome = await Promise.race([watch.done, abandoned]);
      if (outcome && run === this.#run) this.set({ outcome, job: outcome.update });
    } catch (error) {
      if (run === this.#run) this.set({ error: asError(error), loading: false });
    }
  }
}

// ## The hero flow: useGenerate

/** Where a generation started by useGenerate is. */
export type GeneratePhase =
  | "idle"
  | "parsing"
  | "submitting"
  | "following"
  | "succeeded"
  | "failed"
  | "canceled"
  | "error";

/** What useGenerate returns besides its actions. */
export interface GenerateSnapshot {
  phase: GeneratePhase;
  parsed: ParsedPrompt | null;
  /** The inserted row (its id, resolved style, seed …). */
  submitted: GenerationJob | null;
  /** The newest state of the job. */
  job: JobUpdate | null;
  /** The image, once the job succeeded. */
  signedUrl: string | null;
  /** A ValidationError (with `field`), RateLimitedError, TransportError, ParsePromptError … */
  error: Error | null;
}

const IDLE: GenerateSnapshot = {
  phase: "idle",
  parsed: null,
  submitted: null,
  job: null,
  signedUrl: null,
  error: null,
};

/** parse-prompt → insert → follow, one generation at a time; a new generate() replaces the previous one. */
export class GenerateStore extends Snapshots<GenerateSnapshot> {
  #run = 0;
  readonly #abandon = new Abandon();
  #watch: JobWatch | null = null;
  #release: (() => void) | null = null;

  constructor(readonly client: TenkaigenClient) {
    super(IDLE);
  }

  /** On mount. After a stop(), a job still in flight is selected again and followed. */
  start(): void {
    if (this.#release) return;
    this.#release = this.client.hold();
    const { submitted, phase } = this.getSnapshot();
    if (submitted && phase === "following") {
      const run = ++this.#run;
      void this.client.getJob(submitted.id).then(
        (row) => this.#follow(run, row),
        (error) => run === this.#run && this.set({ phase: "error", error: asError(error) }),
      );
    }
  }

  /** On unmount: stop following; the channel closes when nothing else uses it. */
  stop(): void {
    this.#run++;
    this.#abandon.now();
    this.#watch?.stop();
    this.#watch = null;
    this.#release?.();
    this.#release = null;
  }

  /** Starts a generation. Errors land in the snapshot (`phase: "error"`), never as a rejection. */
  async generate(input: GenerateInput): Promise<void> {
    this.#abandon.now();
    this.#watch?.stop();
    const run = ++this.#run;
    this.set({ ...IDLE, phase: "parsing" });
    try {
      const parsed = await this.client.parsePrompt(input.prompt, input.product);
      if (run !== this.#run) return;
      this.set({ phase: "submitting", parsed });
      const submitted = await this.client.submitJob(requestFromParsed(input, parsed));
      if (run !== this.#run) return;
      this.set({ phase: "following", submitted });
      await this.#follow(run, submitted);
    } catch (error) {
      if (run === this.#run) this.set({ phase: "error", error: asError(error) });
    }
  }

  /** Cancels the current job (queued: at once; running: the worker stops it). */
  async cancel(): Promise<CancelResult | null> {
    const { submitted } = this.getSnapshot();
    return submitted ? await this.client.cancelJob(submitted.id) : null;
  }

  /** Back to idle (stops following the current job). */
  reset(): void {
    this.#run++;
    this.#abandon.now();
    this.#watch?.stop();
    this.#watch = null;
    this.set(IDLE);
  }

  async #follow(run: number, row: GenerationJob): Promise<void> {
    const abandoned = this.#abandon.next();
    try {
      const watch = await this.client.watchJob(row, (job) => {
        if (run === this.#run) this.set({ job });
      });
      if (run !== this.#run) {
        watch.stop();
        return;
      }
      this.#watch = watch;
      const outcome = await Promise.race([watch.done, abandoned]);
      if (!outcome || run !== this.#run) return;
      this.set({
        phase: outcome.status,
        job: outcome.update,
        signedUrl: outcome.status === "succeeded" ? outcome.signedUrl : null,
        error: outcome.status === "failed"
          ? new TenkaigenError(
            outcome.errorMessage ?? "generation failed",
            outcome.errorCode ?? "failed",
          )
          : null,
      });
    } catch (error) {
      if (run === this.#run) this.set({ phase: "error", error: asError(error) });
    }
  }
}
