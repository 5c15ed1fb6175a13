-- queue.requeue_job clears everything the previous run left on the row, not only its result.
--
-- Why: requeue_job (20261125000600) cleared result_path and result_bytes but kept backend, backend_call_id,
-- gpu_seconds, cost_usd and started_at. queue.job_stats (20261125001300) sums gpu_seconds and cost_usd over the
-- jobs finished in the last 24 hours, and the worker's cost alert reads it: a job that succeeded days ago, then was
-- requeued and canceled (or failed) today, counted its old run's cost again as spent today, though it never ran
-- again. While queued, the job also showed the old run's started_at and backend call to the client and to
-- `tenkaigen jobs`, and a requeued job canceled before any claim kept them for good.
--
-- What changes: requeue_job also sets started_at, backend, backend_call_id, gpu_seconds, cost_usd, locked_by and
-- lease_expires_at to null (the last two are already null on a final job; written out so that the whole previous
-- run is visibly reset in one place). Everything else is as before: status queued, attempts reset (or kept below
-- max_attempts), run_after now, progress 0, finished_at, cancel_requested_at, error_code, error_message,
-- result_path and result_bytes cleared; the request and what insert resolved it to (seed included, so the rerun
-- repeats it), priority, max_attempts and created_at are kept. Signature, owner, grants (postgres only: no grant
-- to tenkaigen_worker or the API roles) and return values are unchanged (`create or replace`).
-- The row holds one run: the cost of the run before the requeue leaves the 24-hour sums when it is requeued.
-- queue.job_completions keeps the audit of each successful attempt (job, attempt, worker, result_path).

create or replace function queue.requeue_job(job_id uuid, reset_attempts boolean default true)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  select j.status into v_status from public.generation_jobs j where j.id = requeue_job.job_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('job_id: no job %s', requeue_job.job_id);
  end if;
  if v_status in ('queued', 'running') then
    return v_status;       -- already live: nothing to do
  end if;
  update public.generation_jobs j
     set status = 'queued',
         attempts = case when requeue_job.reset_attempts then 0 else least(j.attempts, j.max_attempts - 1) end,
         run_after = now(),
         progress = 0,
         -- everything the previous run recorded
         started_at = null,
         finished_at = null,
         locked_by = null,
         lease_expires_at = null,
         cancel_requested_at = null,
         error_code = null,
         error_message = null,
         result_path = null,
         result_bytes = null,
         backend = null,
         backend_call_id = null,
         gpu_seconds = null,
         cost_usd = null
   where j.id = requeue_job.job_id;
  perform pg_notify('generation_jobs_queued', '');
  return 'queued';
end;
$$;
comment on function queue.requeue_job(uuid, boolean) is
  'Admin: put a failed, canceled or succeeded job back in the queue (attempts reset by default), clearing '
  'everything its previous run recorded (result, backend call, GPU time, cost, start and finish times, error; '
  '20261125001800). Returns queued, or the live status it already had.';
