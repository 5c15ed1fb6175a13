-- The worker records the backend's call id as soon as the call exists, so a job can be canceled on the backend
-- from the first second and a worker that takes over a job re-attaches to its call instead of paying again.
--
-- Why: the Modal backend used to learn its function call id only from the first event the container streamed,
-- after `@modal.enter` had loaded the model (30-90 s, more on an empty weights volume). A job canceled, or past
-- its deadline, during that cold start could not be canceled on Modal: the orphaned input kept running (paid) and
-- the retry started a second one. generation_jobs.backend_call_id (20261125000300) was written only by
-- complete_jobs, i.e. after success, so a worker that crashed mid-generation left no trace of the call.
--
-- What changes: one fenced worker function,
--   queue.record_backend_call(worker_id, job_id, attempt, call_id) -> boolean
-- sets backend_call_id on the running attempt this worker holds (status running, locked_by = worker_id,
-- attempts = attempt; false and no change otherwise, like every worker write). The worker calls it right after
-- spawning the call (Modal's `spawn` returns a FunctionCall id at once, even while the input is queued).
-- What keeps it: claim_jobs returns the whole row, so the next attempt of the job sees the previous attempt's
-- backend_call_id; reap_expired_leases and release_jobs (20261125000600) do not touch it, so a worker that
-- crashed or was stopped leaves the call id to its successor, which re-attaches to the call when it is still
-- running or finished with a result. complete_jobs overwrites it with the call that produced the image;
-- requeue_job clears it (20261125001800), so an admin requeue always generates anew. No trigger fires on the
-- column: the Realtime broadcast (20261125001000) only follows status, progress, result and cancel requests.
--
-- Privileges (the discipline of 20261125001700): schema queue has no usage for the API roles; the function is
-- still revoked from public, anon, authenticated and service_role, then granted to tenkaigen_worker only.

create function queue.record_backend_call(worker_id text, job_id uuid, attempt integer, call_id text)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with updated as (
    update public.generation_jobs j
       set backend_call_id = left(nullif(btrim(record_backend_call.call_id), ''), 200)
     where j.id = record_backend_call.job_id
       and j.attempts = record_backend_call.attempt
       and j.status = 'running'
       and j.locked_by = record_backend_call.worker_id
    returning 1
  )
  select exists (select from updated)
$$;
comment on function queue.record_backend_call(text, uuid, integer, text) is
  'Record the backend call id (e.g. a Modal FunctionCall id) of the running attempt this worker holds, as soon as '
  'the call exists. False = the lease is lost. Kept by reap and release, so the next attempt can re-attach.';

revoke all on function queue.record_backend_call(text, uuid, integer, text)
  from public, anon, authenticated, service_role;
grant execute on function queue.record_backend_call(text, uuid, integer, text) to tenkaigen_worker;
