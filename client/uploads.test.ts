// The edit flow: upload to generation-inputs/<user_id>/<uuid>.<ext> with its content type, then an edit job.
import assert from "node:assert/strict";
import { TenkaigenError, ValidationError } from "./tenkaigen_client";
import { setup, USER_ID } from "./test_support/fake_supabase";
import { checkInitImagePath, INIT_IMAGE_MAX_BYTES, initImagePath } from "./uploads";

const png = (bytes = 68) => new Blob([new Uint8Array(bytes)], { type: "image/png" });

Deno.test("edit: the image goes to the user's folder with its content type, then the job points at it", async () => {
  const { fake, client } = setup();
  const { initImagePath: path, job, watch } = await client.submitEdit({
    prompt: "make the fox blue",
    image: png(),
    request: { seed: 7 },
  });

  assert.match(path, new RegExp(`^${USER_ID}/[0-9a-f-]{36}\\.png$`));
  assert.ok(fake.log.includes(`upload generation-inputs/${path} image/png 68`));
  assert.equal(job.init_image_path, path);
  assert.equal(job.seed, 7);
  fake.succeed(job.id);
  assert.equal((await watch.done).status, "succeeded");
});

Deno.test("edit: a wrong type is refused before upload, naming the field", async () => {
  const { fake, client } = setup();
  const gif = new Blob([new Uint8Array(10)], { type: "image/gif" });
  await assert.rejects(client.uploadInitImage(gif), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    assert.equal(error.field, "init_image");
    assert.equal(
      error.message,
      "init_image: must be image/png, image/jpeg, image/webp (got image/gif)",
    );
    return true;
  });
  assert.equal(fake.objects.size, 0);
});

Deno.test("edit: a file over the bucket's 10 MiB limit, or an empty one, is refused before upload", async () => {
  const { fake, client } = setup();
  for (const size of [INIT_IMAGE_MAX_BYTES + 1, 0]) {
    await assert.rejects(client.uploadInitImage(png(size)), {
      name: "ValidationError",
      field: "init_image",
      message: `init_image: must be 1 to 10485760 bytes (10 MiB) (got ${size} bytes)`,
    });
  }
  await client.uploadInitImage(png(INIT_IMAGE_MAX_BYTES)); // exactly the limit is fine
  assert.equal(fake.objects.size, 1);
});

Deno.test("edit: another user's folder is refused by the client, and by Storage's policy if sent", async () => {
  const { fake, client } = setup();
  const other = "9e1d2c3b-4a59-4687-8a9b-0c1d2e3f4a5b";
  await assert.rejects(client.uploadInitImage(png(), { path: `${other}/ref.png` }), {
    name: "ValidationError",
    field: "init_image_path",
    message:
      `init_image_path: must be <your user id>/<file name> in bucket generation-inputs (got ${other}/ref.png)`,
  });
  assert.equal(checkInitImagePath(`${USER_ID}/../x.png`, USER_ID)?.field, "init_image_path");
  assert.equal(checkInitImagePath(`${USER_ID}/.hidden`, USER_ID)?.field, "init_image_path");
  assert.equal(checkInitImagePath(`${USER_ID}/ref.png`, USER_ID), null);
  assert.equal(fake.objects.size, 0);

  // a job that names another user's object is refused by the database (the stub answers as it does)
  await assert.rejects(client.submitJob({ prompt: "x", init_image_path: `${other}/ref.png` }), {
    name: "ValidationError",
    field: "init_image_path",
  });
});

Deno.test("edit: signed out, nothing is uploaded", async () => {
  const { fake, client } = setup();
  fake.signedIn = false;
  await assert.rejects(client.uploadInitImage(png()), (error: unknown) => {
    assert.ok(error instanceof TenkaigenError);
    assert.equal(error.code, "not_signed_in");
    return true;
  });
  assert.equal(initImagePath(USER_ID, "image/webp", "x"), `${USER_ID}/x.webp`);
});
