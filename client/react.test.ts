// The hooks in a real React 19 tree (react-dom on happy-dom's DOM, StrictMode): subscribe on mount, one shared
// channel, close on unmount, resync after a reconnect. The stores they wrap are tested in job_store.test.ts.
import assert from "node:assert/strict";
import { Window } from "happy-dom";

const win = new Window();
Object.assign(globalThis, {
  window: win,
  document: win.document,
  navigator: win.navigator,
  HTMLElement: win.HTMLElement,
  IS_REACT_ACT_ENVIRONMENT: true,
});
const React = await import("react");
const { createRoot } = await import("react-dom/client");
const { TenkaigenProvider, useGenerate, useGenerationJob } = await import("./react");
const { FakeSupabase, tick } = await import("./test_support/fake_supabase");
type TenkaigenSupabase = import("./tenkaigen_client").TenkaigenSupabase;
type GenerationJobState = import("./react").GenerationJobState;
type GenerateState = import("./react").GenerateState;

const { act, createElement: h, StrictMode } = React;

/** Renders `child` under StrictMode and a TenkaigenProvider on the stub; returns the unmount. */
async function render(fake: InstanceType<typeof FakeSupabase>, child: React.ReactNode) {
  const root = createRoot(document.createElement("div") as unknown as Element);
  await act(() => {
    root.render(
      h(
        StrictMode,
        null,
        h(TenkaigenProvider, { supabase: fake as unknown as TenkaigenSupabase }, child),
      ),
    );
  });
  await settle();
  return async () => {
    await act(() => root.unmount());
    await settle();
  };
}

async function settle(): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 5; i++) await tick();
  });
}

Deno.test("useGenerationJob in StrictMode: one channel while mounted, live updates, closed on unmount", async () => {
  const fake = new FakeSupabase();
  const job = fake.insert({ prompt: "a cat", client_request_id: "c1" }).data!;
  const seen: GenerationJobState[] = [];
  function Job() {
    seen.push(useGenerationJob(job.id));
    return null;
  }
  const unmount = await render(fake, h(Job));

  assert.equal(seen.at(-1)?.job?.status, "queued");
  assert.equal(fake.channels.filter((c) => !c.removed).length, 1, "one live channel");

  await act(() => void fake.succeed(job.id));
  await settle();
  const last = seen.at(-1)!;
  assert.equal(last.outcome?.status, "succeeded");
  assert.ok(last.outcome?.status === "succeeded" && last.outcome.signedUrl.includes(job.id));

  await unmount();
  assert.ok(fake.channels.every((c) => c.removed), "unmount leaves the channel");
});

Deno.test("useGenerationJob: a reconnect re-reads the job; nothing polls in between", async () => {
  const fake = new FakeSupabase();
  const job = fake.insert({ prompt: "a cat", client_request_id: "c1" }).data!;
  const seen: GenerationJobState[] = [];
  function Job() {
    seen.push(useGenerationJob(job.id));
    return null;
  }
  const unmount = await render(fake, h(Job));
  const live = fake.channels.find((c) => !c.removed)!;
  const reads = fake.log.filter((l) => l.startsWith("select")).length;

  fake.broadcastsDropped = true;
  await act(() => void fake.update(job.id, { status: "running", progress: 0.3 }));
  await settle();
  assert.equal(seen.at(-1)?.job?.status, "queued", "the broadcast was lost");
  assert.equal(fake.log.filter((l) => l.startsWith("select")).length, reads, "no polling");

  fake.broadcastsDropped = false;
  await act(() => live.rejoin());
  await settle();
  assert.equal(seen.at(-1)?.job?.progress, 0.3);
  await unmount();
});

Deno.test("useGenerate: submit, progress, image; unmounting mid-flight closes the channel", async () => {
  const fake = new FakeSupabase();
  let state: GenerateState | null = null;
  function Hero() {
    state = useGenerate();
    return null;
  }
  const unmount = await render(fake, h(Hero));
  assert.equal(state!.phase, "idle");
  assert.equal(fake.channels.length, 0, "nothing is joined before a generation");

  await act(() => void state!.generate({ prompt: "a fox astronaut" }));
  await settle();
  assert.equal(state!.phase, "following");
  await act(() => void fake.succeed(fake.rows[0].id));
  await settle();
  assert.equal(state!.phase, "succeeded");
  assert.ok(state!.signedUrl?.includes(`${fake.rows[0].id}.png`));

  await act(() => void state!.generate({ prompt: "a second fox" }));
  await settle();
  assert.equal(state!.phase, "following");
  await unmount();
  assert.ok(fake.channels.every((c) => c.removed), "unmount leaves the channel");
  await win.happyDOM.close();
});
