// The stub answers every case of client/fixtures/database_errors.json exactly as the database does (the same file
// drives tests/client/test_database_errors.py against the real schema), and the client maps each to its type.
import assert from "node:assert/strict";
import fixture from "./fixtures/database_errors.json" with { type: "json" };
import type { GenerationJobRequest } from "./generation_jobs";
import { RateLimitedError, TenkaigenError, ValidationError } from "./tenkaigen_client";
import { setup, USER_ID } from "./test_support/fake_supabase";

const OTHER_USER_ID = "9e1d2c3b-4a59-4687-8a9b-0c1d2e3f4a5b";

interface Case {
  name: string;
  setup?: {
    max_active_jobs: number;
    max_jobs_per_hour: number;
    existing_jobs: number;
    existing_client_request_id?: string;
  };
  request?: Record<string, unknown>;
  rpc?: { name: string; job_id: string };
  code: string;
  message: string;
  details?: string | null;
  field?: string;
}

const fill = (text: string): string =>
  text.replaceAll("{user_id}", USER_ID).replaceAll("{other_user_id}", OTHER_USER_ID);

for (const c of fixture.cases as Case[]) {
  Deno.test(`stub = database: ${c.name} → ${c.code}`, async () => {
    const { fake, client } = setup({ requestIds: ["r1", "r2", "r3", "r4"] });
    if (c.setup) {
      fake.activeJobLimit = c.setup.max_active_jobs;
      fake.hourlyJobLimit = c.setup.max_jobs_per_hour;
      for (let i = 0; i < c.setup.existing_jobs; i++) {
        const id = i === 0 ? c.setup.existing_client_request_id : undefined;
        fake.insert({ prompt: `existing ${i}`, client_request_id: id ?? `existing-${i}` });
      }
    }
    if (c.rpc) {
      const answer = await fake.rpc(c.rpc.name, { job_id: c.rpc.job_id });
      assert.deepEqual([answer.error?.code, answer.error?.message], [c.code, fill(c.message)]);
      return;
    }
    const request = JSON.parse(fill(JSON.stringify(c.request))) as GenerationJobRequest;
    const answer = fake.insert({ ...request });
    assert.equal(answer.data, null);
    assert.deepEqual([answer.error?.code, answer.error?.message], [c.code, fill(c.message)]);
    if ("details" in c) assert.equal(answer.error?.details, c.details);

    if (c.code === "23505") return; // the client answers a repeated request id with the existing row
    await assert.rejects(client.submitJob(request), (error: unknown) => {
      assert.ok(error instanceof TenkaigenError);
      assert.equal(error.code, c.code);
      assert.equal(error.message, fill(c.message));
      if (c.field) {
        assert.ok(error instanceof ValidationError, `${c.name}: a ValidationError`);
        assert.equal(error.field, c.field);
      }
      if (c.code === "PT429") assert.ok(error instanceof RateLimitedError);
      return true;
    });
  });
}
