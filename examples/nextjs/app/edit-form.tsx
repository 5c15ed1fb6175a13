"use client";

import { useTenkaigen } from "@tenkaigen/client/react";
import Link from "next/link";
import { type FormEvent, useState } from "react";

/** The edit flow: upload a reference image to generation-inputs/<user id>/, then an edit job that uses it. */
export function EditForm() {
  const tenkaigen = useTenkaigen();
  const [jobId, setJobId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const image = form.get("image");
    if (!(image instanceof File)) return;
    try {
      const { job, watch } = await tenkaigen.submitEdit({
        prompt: String(form.get("prompt") ?? ""),
        image,
      });
      watch.stop(); // the job page follows it (useGenerationJob)
      setJobId(job.id);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e)); // e.g. "init_image: must be image/png, …"
    }
  }

  return (
    <section>
      <h2>Edit an image</h2>
      <form onSubmit={submit}>
        <input name="image" type="file" accept="image/png,image/jpeg,image/webp" required />
        <input name="prompt" placeholder="Make the dragon blue" required />
        <button type="submit">Edit</button>
      </form>
      {jobId && <Link href={`/jobs/${jobId}`}>Follow the edit</Link>}
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
