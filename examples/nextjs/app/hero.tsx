"use client";

import { RateLimitedError, TransportError, ValidationError } from "@tenkaigen/client";
import { useGenerate } from "@tenkaigen/client/react";
import type { FormEvent } from "react";

/** The hero prompt: parse-prompt → insert → live progress → the image through a signed URL. */
export function Hero() {
  const { phase, parsed, job, signedUrl, error, generate, cancel } = useGenerate();
  const busy = phase === "parsing" || phase === "submitting" || phase === "following";

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const prompt = String(new FormData(event.currentTarget).get("prompt") ?? "");
    void generate({ prompt, product: { kind: "t-shirt", color: "black" } });
  }

  return (
    <section>
      <form onSubmit={submit}>
        <input name="prompt" placeholder="A majestic dragon over Mount Fuji" required />
        <button type="submit" disabled={busy}>Generate</button>
        {phase === "following" && <button type="button" onClick={() => void cancel()}>Cancel</button>}
      </form>
      {parsed && <h2>{parsed.title}</h2>}
      {job && (
        <p>
          {job.status} <progress value={job.progress} max={1} />
        </p>
      )}
      {signedUrl && <img src={signedUrl} alt={parsed?.title ?? "generated design"} width={512} />}
      {error && <p role="alert">{describe(error)}</p>}
    </section>
  );
}

/** What the user reads for each kind of error. */
function describe(error: Error): string {
  if (error instanceof ValidationError) return `${error.field ?? "request"}: ${error.message}`;
  if (error instanceof RateLimitedError) return "Too many designs in progress; try again soon.";
  if (error instanceof TransportError) return "No connection; your request is safe to retry.";
  return error.message;
}
