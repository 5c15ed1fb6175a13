// The subscription lifecycle the React hooks wrap (client/react.ts → client/job_store.ts), against the stub:
// subscribe on mount, close on unmount, re-select after a reconnect, never poll.
import assert from "node:assert/strict";
import { GenerateStore, JobStore } from "./job_store";
import { setup, tick } from "./test_support/fake_supabase";

const selects = (log: string[]): string[] => log.filter((line) => line.startsWith("select"));

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

Deno.test("useGenerationJob: mount selects the job once and joins the channel; updates arrive by broadcast", async () => {
  const { fake, client } = setup({ leaveWhenIdle: true });
  const job = await client.submitJob({ prompt: "a cat" });
  fake.log.length = 0;
  const store = new JobStore(client, job.id);
  const seen: string[] = [];
  store.subscribe(() => seen.push(store.getSnapshot().job?.status ?? "-"));

  store.start();
  await settle();
  assert.equal(store.getSnapshot().loading, false);
  assert.equal(store.getSnapshot().job?.status, "queued");
  assert.equal(fake.channels.length, 1);

  fake.succeed(job.id);
  await settle();
  const snapshot = store.getSnapshot();
  assert.equal(snapshot.outcome?.status, "succeeded");
  assert.ok(
    snapshot.outcome?.status === "succeeded" && snapshot.outcome.signedUrl.includes(job.id),
  );
  assert.deepEqual(seen.slice(-2), ["succeeded", "succeeded"]);
  // one select on mount (getJob) and one catch-up on SUBSCRIBED: no polling while the job ran
  assert.deepEqual(selects(fake.log), [`select one id=${job.id}`, `select id=${job.id}`]);
});

Deno.test("useGenerationJob: unmount closes the channel; a remount in the same commit keeps it", async () => {
  const { fake, client } = setup({ leaveWhenIdle: true });
  const job = await client.submitJob({ prompt: "a cat" });
  const store = new JobStore(client, job.id);
  store.start();
  await settle();
  assert.equal(fake.channels.length, 1);

  store.stop(); // React StrictMode: unmount and mount again at once
  store.start();
  await settle();
  assert.equal(fake.channels[0].removed, false, "the channel survives a remount");
  assert.equal(fake.channels.length, 1);

  store.stop(); // the real unmount
  await settle();
  assert.equal(fake.channels[0].removed, true, "the last unmount leaves the channel");
  assert.equal(client.following, false);
  fake.update(job.id, { status: "running" });
  assert.equal(store.getSnapshot().job?.status, "queued", "nothing arrives after unmount");
});

Deno.test("useGenerationJob: after a reconnect the job is re-selected and the missed update shows", async () => {
  const { fake, client } = setup({ leaveWhenIdle: true });
  const job = await client.submitJob({ prompt: "a cat" });
  const store = new JobStore(client, job.id);
  store.start();
  await settle();

  fake.broadcastsDropped = true; // the socket is down
  fake.update(job.id, { status: "running", progress: 0.4 });
  assert.equal(store.getSnapshot().job?.status, "queued");
  fake.broadcastsDropped = false;
  fake.channels[0].rejoin();
  await settle();

  assert.equal(store.getSnapshot().job?.status, "running");
  assert.equal(store.getSnapshot().job?.progress, 0.4);
  assert.equal(fake.channels.length, 1, "realtime-js rejoined the same channel");
});

Deno.test("useGenerationJob: two components on one job share one channel; an unknown job is an error", async () => {
  const { fake, client } = setup({ leaveWhenIdle: true });
  const job = await client.submitJob({ prompt: "a cat" });
  const a = new JobStore(client, job.id);
  const b = new JobStore(client, job.id);
  a.start();
  b.start();
  await settle();
  assert.equal(fake.channels.length, 1);
  a.stop();
  await settle();
  assert.equal(fake.channels[0].removed, false, "b still follows the job");
  fake.update(job.id, { status: "running" });
  assert.equal(b.getSnapshot().job?.status, "running");
  b.stop();
  await settle();
  assert.equal(fake.channels[0].removed, true);

  const missing = new JobStore(client, "00000000-0000-4000-8000-000000000404");
  missing.start();
  await settle();
  assert.equal(missing.getSnapshot().error?.name, "JobNotFoundError");
});

Deno.test("useGenerate: parse → submit → follow → image, then cancel of a second one", async () => {
  const { fake, client } = setup({ leaveWhenIdle: true });
  const store = new GenerateStore(client);
  const phases: string[] = [];
  store.subscribe(() => {
    const phase = store.getSnapshot().phase;
    if (phases.at(-1) !== phase) phases.push(phase);
  });
  store.start();

  const running = store.generate({ prompt: "a fox astronaut" });
  while (fake.rows.length === 0 || fake.channels.length === 0) await tick();
  await settle();
  fake.succeed(fake.rows[0].id);
  await running;
  await settle();

  const done = store.getSnapshot();
  assert.deepEqual(phases, ["parsing", "submitting", "following", "succeeded"]);
  assert.equal(done.parsed?.title, "Fox Astronaut");
  assert.ok(done.signedUrl?.includes(`${fake.rows[0].id}.png`));

  const second = store.generate({ prompt: "a dog" });
  while (fake.rows.length < 2) await tick();
  await settle();
  assert.equal(await store.cancel(), "canceled");
  await second;
  assert.equal(store.getSnapshot().phase, "canceled");
  store.stop();
  await settle();
  assert.equal(fake.channels.every((c) => c.removed), true, "unmount leaves the channel");
});

Deno.test("useGenerate: errors land in the snapshot with the field; unmount mid-flight drops the job's updates", async () => {
  const { fake, client } = setup({ leaveWhenIdle: true });
  const store = new GenerateStore(client);
  store.start();
  await store.generate({ prompt: "a cat", request: { width: 1000 } });
  const failed = store.getSnapshot();
  assert.equal(failed.phase, "error");
  assert.equal(failed.error?.name, "ValidationError");
  assert.equal((failed.error as { field?: string }).field, "width");

  const pending = store.generate({ prompt: "a cat" });
  while (fake.channels.length === 0) await tick();
  await settle();
  store.stop();
  await pending;
  await settle();
  fake.succeed(fake.rows[0].id);
  await settle();
  assert.equal(store.getSnapshot().phase, "following", "an unmounted component hears nothing");
  assert.equal(fake.channels[0].removed, true);

  store.start(); // mounted again: the job in flight is selected again and followed to its end
  await settle();
  assert.equal(store.getSnapshot().phase, "succeeded");
});
