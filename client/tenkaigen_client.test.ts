// Drives client/tenkaigen_client.ts against the stub supabase-js client of client/test_support/fake_supabase.ts,
// which behaves like the database (its errors are the database's: client/fixtures/database_errors.json).
import assert from "node:assert/strict";
import { createClient, FunctionsFetchError, FunctionsHttpError } from "@supabase/supabase-js";
import type { ParsePromptResult } from "../supabase/functions/parse-prompt/contract.ts";
import {
  type Database,
  type GenerationJob,
  type JobUpdate,
  jobUpdateFromRow,
  toGenerationJob,
} from "./generation_jobs";
import {
  isNewer,
  JobNotFoundError,
  type ParsedPrompt,
  ParsePromptError,
  RateLimitedError,
  RealtimeError,
  TenkaigenClient,
  TenkaigenError,
  type TenkaigenSupabase,
  timestampMicros,
  toTenkaigenError,
  TransportError,
  ValidationError,
} from "./tenkaigen_client";
import { pgError, setup, tick, USER_ID } from "./test_support/fake_supabase";

// ## The flow ---------------------------------------------------------------------------------------------------

Deno.test("generate: parse-prompt → insert → setAuth → private channel → progress → signed URL", async () => {
  const { fake, client } = setup();
  const seen: JobUpdate[] = [];

  const { parsed, job, watch } = await client.generate(
    {
      prompt: "a fox astronaut",
      product: { kind: "t-shirt", color: "black" },
      request: { width: 768 },
    },
    (update) => seen.push(update),
  );

  assert.equal(parsed.source, "fallback");
  assert.deepEqual(fake.invokes, [{
    name: "parse-prompt",
    body: { prompt: "a fox astronaut", product: { kind: "t-shirt", color: "black" } },
  }]);
  assert.equal(job.client_request_id, "req-1");
  assert.equal(job.prompt, "a fox astronaut");
  assert.equal(job.expanded_prompt, "a fox astronaut, centered composition");
  assert.equal(job.style, "watercolor");
  assert.equal(job.width, 768);
  assert.equal(job.franchise, null);
  assert.deepEqual(job.metadata, {
    title: "Fox Astronaut",
    tags: ["fox", "space"],
    prompt_source: "fallback",
    product: { kind: "t-shirt", color: "black" },
  });
  const channel = fake.channels[0];
  assert.equal(channel.topic, `generation_jobs:${USER_ID}`);
  assert.deepEqual(channel.options, { config: { private: true } });
  assert.deepEqual(channel.bindings.map((b) => [b.type, b.event]), [["broadcast", "job_update"]]);
  assert.deepEqual(fake.log.slice(0, 4), [
    "invoke parse-prompt",
    "insert req-1",
    "setAuth",
    `channel generation_jobs:${USER_ID}`,
  ]);

  fake.succeed(job.id);
  const outcome = await watch.done;

  assert.equal(outcome.status, "succeeded");
  assert.equal(
    outcome.status === "succeeded" && outcome.signedUrl,
    `https://project.supabase.co/storage/v1/object/sign/generated-designs/${USER_ID}/${job.id}.png?token=t`,
  );
  assert.ok(fake.log.includes(`sign generated-designs/${USER_ID}/${job.id}.png 3600`));
  assert.deepEqual(
    seen.map((u) => [u.status, u.progress]),
    [["queued", 0], ["running", 0], ["running", 0.5], ["succeeded", 1]],
  );
  assert.equal(watch.latest().status, "succeeded");
});

Deno.test("a failed job ends with its error code and message", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a cat" });
  const watch = await client.watchJob(job);

  fake.update(job.id, { status: "running", locked_by: "w1" });
  fake.update(job.id, {
    status: "failed",
    locked_by: null,
    finished_at: "x",
    error_code: "BadRequest",
    error_message: "prompt rejected by the safety checker",
  });

  const outcome = await watch.done;
  assert.equal(outcome.status, "failed");
  assert.equal(outcome.status === "failed" && outcome.errorCode, "BadRequest");
  assert.equal(
    outcome.status === "failed" && outcome.errorMessage,
    "prompt rejected by the safety checker",
  );
});

// ## Idempotent insert ------------------------------------------------------------------------------------------

Deno.test("a repeated insert with the same client_request_id returns the existing row (23505)", async () => {
  const { fake, client } = setup();
  const first = await client.submitJob({ prompt: "a cat", client_request_id: "hero-42" });
  const again = await client.submitJob({ prompt: "a cat", client_request_id: "hero-42" });

  assert.equal(again.id, first.id);
  assert.equal(fake.rows.length, 1);
  assert.deepEqual(fake.log.filter((l) => l.startsWith("insert")), [
    "insert hero-42",
    "insert hero-42",
  ]);
});

Deno.test("an insert whose answer was lost is retried with the same id and finds its row", async () => {
  const { fake, client, sleeps } = setup();
  fake.insertFaults = ["lost-answer"];

  const job = await client.submitJob({ prompt: "a cat" });

  assert.equal(fake.rows.length, 1);
  assert.equal(job.id, fake.rows[0].id);
  assert.deepEqual(fake.log.filter((l) => l.startsWith("insert")), [
    "insert req-1",
    "insert req-1",
  ]);
  assert.deepEqual(sleeps, [500]);
});

Deno.test("a retry at the quota limit still finds its row (23505 comes before the quota)", async () => {
  const { fake, client } = setup();
  fake.activeJobLimit = 1;
  fake.insertFaults = ["lost-answer"];

  const job = await client.submitJob({ prompt: "a cat" });

  assert.equal(job.id, fake.rows[0].id);
  assert.equal(fake.rows.length, 1);
});

Deno.test("an insert that never arrived is retried, then gives up with TransportError", async () => {
  const { fake, client, sleeps } = setup();
  fake.insertFaults = ["unreachable"];
  assert.equal((await client.submitJob({ prompt: "a cat" })).client_request_id, "req-1");

  fake.insertFaults = ["unreachable", "unreachable", "unreachable"];
  await assert.rejects(client.submitJob({ prompt: "a dog" }), TransportError);
  assert.deepEqual(sleeps, [500, 500, 1000]);
  assert.equal(fake.rows.length, 1);
});

// ## Errors -----------------------------------------------------------------------------------------------------

Deno.test("a validation error becomes ValidationError naming the field, and no row", async () => {
  const { fake, client } = setup();
  await assert.rejects(client.submitJob({ prompt: "a cat", width: 1000 }), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    assert.equal(error.field, "width");
    assert.equal(error.code, "22023");
    assert.equal(error.message, "width: must be a multiple of 16 between 256 and 2048 (got 1000)");
    return true;
  });
  await assert.rejects(client.submitJob({ prompt: "a cat", style: "cubism" }), {
    name: "ValidationError",
    field: "style",
  });
  assert.equal(fake.rows.length, 0);
});

Deno.test("a quota refusal becomes RateLimitedError", async () => {
  const { fake, client } = setup();
  fake.activeJobLimit = 1;
  await client.submitJob({ prompt: "one" });
  await assert.rejects(client.submitJob({ prompt: "two" }), (error: unknown) => {
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.code, "PT429");
    assert.match(error.message, /^rate_limited: at most 1 active jobs/);
    return true;
  });
});

Deno.test("toTenkaigenError maps SQLSTATEs to typed errors", () => {
  const cases: [ReturnType<typeof pgError>, string, string | null][] = [
    [pgError("22023", "steps: must be between 1 and 100 (got 0)"), "ValidationError", "steps"],
    [pgError("22023", "no field prefix here"), "ValidationError", null],
    [
      pgError("23514", "status: illegal transition from queued to succeeded"),
      "ValidationError",
      "status",
    ],
    [
      pgError(
        "23503",
        "insert violates foreign key",
        'Key (style)=(x) is not present in table "generation_styles".',
      ),
      "ValidationError",
      "style",
    ],
    [pgError("PT429", "rate_limited: at most 30 jobs per hour per user"), "RateLimitedError", null],
    [pgError("P0002", "job_id: no job x among your jobs"), "JobNotFoundError", null],
    [pgError("", "TypeError: fetch failed"), "TransportError", null],
    [pgError("42501", "permission denied for table generation_jobs"), "TenkaigenError", null],
  ];
  for (const [error, name, field] of cases) {
    const mapped = toTenkaigenError(error);
    assert.ok(mapped instanceof TenkaigenError);
    assert.equal(mapped.name, name, error.message);
    if (mapped instanceof ValidationError) assert.equal(mapped.field, field);
    assert.equal(mapped.message, error.message);
  }
});

Deno.test("parse-prompt errors become ParsePromptError with the function's status and code", async () => {
  const { fake, client } = setup();
  fake.parsePrompt = () => ({
    data: null,
    error: new FunctionsHttpError(
      Response.json({ error: { code: "invalid_input", message: "prompt: is required" } }, {
        status: 400,
      }),
    ),
  });
  await assert.rejects(client.parsePrompt(""), {
    name: "ParsePromptError",
    status: 400,
    code: "invalid_input",
  });

  fake.parsePrompt = () => ({
    data: null,
    error: new FunctionsHttpError(new Response("gateway", { status: 502 })),
  });
  await assert.rejects(client.parsePrompt("x"), {
    name: "ParsePromptError",
    status: 502,
    code: "http_error",
  });

  fake.parsePrompt = () => ({
    data: null,
    error: new FunctionsFetchError(new TypeError("offline")),
  });
  await assert.rejects(client.parsePrompt("x"), (error: unknown) => {
    assert.ok(error instanceof ParsePromptError);
    assert.equal(error.status, 0);
    assert.equal(error.code, "transport");
    return true;
  });
  assert.equal(fake.rows.length, 0);
});

// ## Cancel and queue position ----------------------------------------------------------------------------------

Deno.test("cancel: a queued job is canceled at once and the watch ends canceled", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a cat" });
  const watch = await client.watchJob(job);

  assert.equal(await client.cancelJob(job.id), "canceled");

  const outcome = await watch.done;
  assert.equal(outcome.status, "canceled");
  assert.equal(outcome.update.cancel_requested, true);
  assert.equal(fake.rows[0].status, "canceled");
});

Deno.test("cancel: a running job is cancel_requested; a finished one answers its status", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a cat" });
  const seen: JobUpdate[] = [];
  await client.watchJob(job, (u) => seen.push(u));
  fake.update(job.id, { status: "running", locked_by: "w1" });

  assert.equal(await client.cancelJob(job.id), "cancel_requested");
  assert.equal(seen.at(-1)?.cancel_requested, true);
  assert.equal(seen.at(-1)?.status, "running");

  fake.update(job.id, { status: "succeeded", result_path: "p", finished_at: "t" });
  assert.equal(await client.cancelJob(job.id), "succeeded");
  await assert.rejects(client.cancelJob("00000000-0000-4000-8000-999999999999"), JobNotFoundError);
});

Deno.test("queuePosition is 1-based while queued, then null", async () => {
  const { fake, client } = setup();
  const a = await client.submitJob({ prompt: "a" });
  const b = await client.submitJob({ prompt: "b" });
  assert.equal(await client.queuePosition(a.id), 1);
  assert.equal(await client.queuePosition(b.id), 2);
  fake.update(a.id, { status: "running" });
  assert.equal(await client.queuePosition(a.id), null);
  assert.equal(await client.queuePosition(b.id), 1);
});

// ## Catch-up and ordering --------------------------------------------------------------------------------------

Deno.test("catch-up on the first SUBSCRIBED: changes before the join are not missed", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a cat" });
  fake.succeed(job.id); // finished before anyone subscribed: no channel yet, nothing broadcast to us

  const watch = await client.watchJob(job);

  assert.equal((await watch.done).status, "succeeded");
  assert.ok(fake.log.includes(`select id=${job.id}`));
});

Deno.test("catch-up on every re-SUBSCRIBED: broadcasts lost while disconnected are recovered", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a cat" });
  const seen: JobUpdate[] = [];
  const watch = await client.watchJob(job, (u) => seen.push(u));
  await tick();

  fake.broadcastsDropped = true; // the socket is down
  fake.succeed(job.id);
  assert.equal(watch.latest().status, "queued");

  fake.broadcastsDropped = false;
  fake.channels[0].rejoin();

  assert.equal((await watch.done).status, "succeeded");
  assert.deepEqual(seen.map((u) => u.status), ["queued", "succeeded"]);
});

Deno.test("late, duplicate and foreign broadcasts never move a job backwards", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a cat" });
  const seen: JobUpdate[] = [];
  const watch = await client.watchJob(job, (u) => seen.push(u));
  const running = fake.update(job.id, { status: "running" });
  const half = fake.update(job.id, { progress: 0.5 });
  const channel = fake.channels[0];

  channel.receive("job_update", running); // late
  channel.receive("job_update", half); // duplicate
  channel.receive("job_update", { ...half, job_id: "someone-else", progress: 0.9 }); // another job
  channel.receive("job_update", { nonsense: true }); // not a job update
  channel.receive("other_event", { ...half, progress: 0.99 }); // another event

  assert.deepEqual(seen.map((u) => [u.status, u.progress]), [["queued", 0], ["running", 0], [
    "running",
    0.5,
  ]]);
  assert.equal(watch.latest().progress, 0.5);
});

Deno.test("isNewer orders by updated_at to the microsecond, then by how far along the state is", () => {
  const base = jobUpdateFromRow({
    ...({} as GenerationJob),
    id: "j",
    status: "running",
    progress: 0.5,
    cancel_requested_at: null,
    updated_at: "2026-11-25T10:00:00.123456+00:00",
  });
  assert.ok(isNewer({ ...base, updated_at: "2026-11-25T10:00:00.123457+00:00" }, base));
  assert.ok(
    !isNewer({ ...base, updated_at: "2026-11-25T10:00:00.123455+00:00", progress: 1 }, base),
  );
  assert.ok(isNewer({ ...base, status: "succeeded" }, base));
  assert.ok(isNewer({ ...base, progress: 0.6 }, base));
  assert.ok(isNewer({ ...base, cancel_requested: true }, base));
  assert.ok(!isNewer({ ...base }, base));
  assert.ok(!isNewer({ ...base, status: "queued", progress: 0 }, base));
  assert.equal(
    timestampMicros("2026-11-25T10:00:00.123456+00:00") -
      timestampMicros("2026-11-25T10:00:00+00:00"),
    123456,
  );
});

// ## The channel ------------------------------------------------------------------------------------------------

Deno.test("one channel per user, shared by watched jobs; a later watch catches up for its job", async () => {
  const { fake, client } = setup();
  const a = await client.submitJob({ prompt: "a" });
  const b = await client.submitJob({ prompt: "b" });
  const watchA = await client.watchJob(a);
  fake.succeed(b.id); // b finishes before it is watched

  const watchB = await client.watchJob(b);
  fake.succeed(a.id);

  assert.equal((await watchA.done).status, "succeeded");
  assert.equal((await watchB.done).status, "succeeded");
  assert.equal(fake.channels.length, 1);
  assert.equal(fake.log.filter((l) => l === "setAuth").length, 1);
});

Deno.test("a job that is already final settles without joining a channel", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a" });
  fake.succeed(job.id);

  const watch = await client.watchJob(await client.getJob(job.id));

  assert.equal((await watch.done).status, "succeeded");
  assert.equal(fake.channels.length, 0);
});

Deno.test("a refused join rejects with RealtimeError; the next watch tries again", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a" });
  fake.joinStatus = "CHANNEL_ERROR";

  await assert.rejects(client.watchJob(job), RealtimeError);
  assert.equal(fake.channels[0].removed, true);

  fake.joinStatus = "SUBSCRIBED";
  const watch = await client.watchJob(job);
  fake.succeed(job.id);
  assert.equal((await watch.done).status, "succeeded");
  assert.equal(fake.channels.length, 2);
});

Deno.test("close() during the first join rejects the pending watch instead of hanging", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a" });
  fake.joinStatus = "CLOSED";
  await assert.rejects(client.watchJob(job), RealtimeError);
});

Deno.test("close() leaves the channel; a stopped watch hears nothing more", async () => {
  const { fake, client } = setup();
  const job = await client.submitJob({ prompt: "a" });
  const seen: JobUpdate[] = [];
  const watch = await client.watchJob(job, (u) => seen.push(u));

  watch.stop();
  fake.update(job.id, { status: "running" });
  assert.deepEqual(seen.map((u) => u.status), ["queued"]);

  await client.close();
  assert.equal(fake.channels[0].removed, true);
  assert.ok(fake.log.includes(`removeChannel generation_jobs:${USER_ID}`));
});

Deno.test("getJob of an unknown or foreign job is JobNotFoundError", async () => {
  const { client } = setup();
  await assert.rejects(client.getJob("00000000-0000-4000-8000-000000000404"), JobNotFoundError);
});

// ## Contract checks --------------------------------------------------------------------------------------------

Deno.test("JobUpdate has exactly the keys of public.generation_job_update() in the migrations", async () => {
  const dir = new URL("../supabase/migrations/", import.meta.url);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".sql"))
    .sort();
  let body: string | null = null;
  for (const name of files) {
    const sql = await Deno.readTextFile(new URL(name, dir));
    const match = /function public\.generation_job_update\([\s\S]*?\$\$([\s\S]*?)\$\$/.exec(sql);
    if (match) body = match[1];
  }
  assert.ok(body, "a migration defines public.generation_job_update");
  const sqlKeys = [...body.matchAll(/'(\w+)',/g)].map((m) => m[1]).sort();
  const row = { cancel_requested_at: null } as unknown as GenerationJob;
  assert.deepEqual(Object.keys(jobUpdateFromRow(row)).sort(), sqlKeys);
});

// Compile-time: parse-prompt's answer fits the client's ParsedPrompt, key for key.
type Keys<T> = T extends unknown ? keyof T : never;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _answerFits = (answer: ParsePromptResult): ParsedPrompt => answer;
const _sameKeys: Same<Keys<ParsePromptResult>, Keys<ParsedPrompt>> = true;
void _answerFits;
void _sameKeys;

// ## The example docs/client.md quotes -------------------------------------------------------------------------

/** What the hero page shows; the test records it. */
interface HeroPageUi {
  prompt: string;
  showProgress(status: string, progress: number): void;
  showQueuePosition(position: number | null): void;
  showTitle(title: string): void;
  showImage(url: string): void;
  showError(message: string, field?: string | null): void;
  onCancel(cancel: () => Promise<unknown>): void;
}

// Type-checked, not run: the app's client. createClient<Database> is what TenkaigenClient takes.
export function createAppClient(supabaseUrl: string, anonKey: string): TenkaigenSupabase {
  return createClient<Database>(supabaseUrl, anonKey);
}

export async function heroPage(supabase: TenkaigenSupabase, ui: HeroPageUi): Promise<void> {
  const tenkaigen = new TenkaigenClient(supabase);
  try {
    const { parsed, job, watch } = await tenkaigen.generate(
      { prompt: ui.prompt, product: { id: "tee-classic", kind: "t-shirt", color: "black" } },
      (update) => ui.showProgress(update.status, update.progress),
    );
    ui.showTitle(parsed.title);
    ui.onCancel(() => tenkaigen.cancelJob(job.id));
    if (job.status === "queued") ui.showQueuePosition(await tenkaigen.queuePosition(job.id));

    const outcome = await watch.done;
    if (outcome.status === "succeeded") ui.showImage(outcome.signedUrl);
    else if (outcome.status === "failed") ui.showError(outcome.errorMessage ?? "generation failed");
    else ui.showError("canceled");
  } catch (error) {
    if (error instanceof ValidationError) ui.showError(error.message, error.field);
    else if (error instanceof RateLimitedError) {
      ui.showError("Too many designs in progress; try again soon.");
    } else throw error;
  } finally {
    await tenkaigen.close();
  }
}

function recordingUi(prompt: string) {
  const shown: string[] = [];
  let cancel: (() => Promise<unknown>) | null = null;
  const ui: HeroPageUi = {
    prompt,
    showProgress: (status, progress) => shown.push(`progress ${status} ${progress}`),
    showQueuePosition: (position) => shown.push(`position ${position}`),
    showTitle: (title) => shown.push(`title ${title}`),
    showImage: (url) => shown.push(`image ${url.split("?")[0].split("/").at(-1) ?? ""}`),
    showError: (message, field) => shown.push(`error ${field ?? "-"} ${message}`),
    onCancel: (fn) => (cancel = fn),
  };
  return { ui, shown, cancel: () => cancel!() };
}

Deno.test("docs example: the hero page shows progress, then the image", async () => {
  const { fake } = setup();
  const { ui, shown } = recordingUi("a fox astronaut");
  const page = heroPage(fake as unknown as TenkaigenSupabase, ui);
  while (fake.channels.length === 0 || fake.rows.length === 0) await tick();
  await tick();

  fake.succeed(fake.rows[0].id);
  await page;

  assert.deepEqual(shown, [
    "progress queued 0",
    "title Fox Astronaut",
    "position 1",
    "progress running 0",
    "progress running 0.5",
    "progress succeeded 1",
    `image ${fake.rows[0].id}.png`,
  ]);
  assert.equal(fake.channels[0].removed, true);
});

Deno.test("docs example: cancel, and the errors the page handles", async () => {
  const { fake } = setup();
  const run = recordingUi("a fox astronaut");
  const page = heroPage(fake as unknown as TenkaigenSupabase, run.ui);
  while (!run.shown.some((s) => s.startsWith("position"))) await tick();
  await run.cancel();
  await page;
  assert.equal(run.shown.at(-1), "error - canceled");

  fake.activeJobLimit = 0;
  const limited = recordingUi("another fox");
  await heroPage(fake as unknown as TenkaigenSupabase, limited.ui);
  assert.deepEqual(limited.shown, ["error - Too many designs in progress; try again soon."]);
});

Deno.test("toGenerationJob refuses a row the schema's CHECKs would not allow, naming the fix", () => {
  const { fake } = setup();
  const row = fake.insert({ prompt: "a cat", client_request_id: "t1" }).data!;
  type Row = Parameters<typeof toGenerationJob>[0];
  assert.equal(toGenerationJob(row as unknown as Row).id, row.id);
  assert.throws(
    () => toGenerationJob({ ...row, status: "paused" } as unknown as Row),
    /status paused.*regenerate client\/database\.types\.ts/,
  );
  assert.throws(
    () => toGenerationJob({ ...row, seed: null } as unknown as Row),
    /null seed/,
  );
});
