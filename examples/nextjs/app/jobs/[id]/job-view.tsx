"use client";

import { useGenerationJob } from "@tenkaigen/client/react";

/** Subscribes on mount, leaves on unmount; after a reconnect the job is re-read. */
export function JobView({ jobId }: { jobId: string }) {
  const { loading, job, outcome, error, cancel } = useGenerationJob(jobId);
  if (error) return <p role="alert">{error.message}</p>;
  if (loading || !job) return <p>Loading…</p>;
  return (
    <main style={{ maxWidth: 640, margin: "2rem auto", fontFamily: "sans-serif" }}>
      <p>
        {job.status} <progress value={job.progress} max={1} />
        {!outcome && <button onClick={() => void cancel()}>Cancel</button>}
      </p>
      {outcome?.status === "succeeded" && <img src={outcome.signedUrl} alt="result" width={512} />}
      {outcome?.status === "failed" && <p role="alert">{outcome.errorMessage}</p>}
      {outcome?.status === "canceled" && <p>Canceled.</p>}
    </main>
  );
}
