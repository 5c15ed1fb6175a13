-- The worker's API: the only way a worker changes a job. The SQL here is the single source of truth for the
-- state machine; the Python worker calls these functions and holds no copy of it.
--
-- Fencing: every write on behalf of a worker applies only while
--   status = 'running' and locked_by = <worker_id> and claims = <the claim number it got from claim_jobs>
-- so a worker that lost its lease (reaped, requeued, canceled, claimed again by someone else or by itself) changes
-- nothing: it gets 0 rows / false / null back and must drop its result. The claim number (generation_jobs.claims)
-- counts the claims of a job and is never reset; the attempt count is no fence, because requeue_job(reset_attempts)
-- sets it back to 0 and release_jobs gives one back, so one worker can hold "attempt 1" of a job twice.
--
-- All functions are security definer with an empty search_path; EXECUTE is granted to tenkaigen_worker only.
--
-- Lock order: a call that waits for several rows (renew_leases, complete_jobs, release_jobs) first locks them in
-- a CTE `order by id for update`, then updates them. Two sessions given overlapping sets in opposite orders then
-- wait for each other in the same order and never deadlock (40P01). The calls that pick rows themselves
-- (claim_jobs, reap_expired_leases, purge_finished_jobs) lock with SKIP LOCKED: they never wait, so their order
-- cannot deadlock (tests/database/test_multi_row_queue_calls_lock_in_id_order.py).

-- ## claim_jobs: queued -> running
-- In the total order (priority desc, run_after, created_at, id), read in order from generation_jobs_claimable_idx
-- (see its comment for why `id` is part of it). The cost of a claim does not grow with the table: a SQL function
-- is planned without knowing max_jobs, so the planner would guess that the LIMIT keeps 10 % of the queued rows and
-- hash-join them over a sequential scan of the whole table (succeeded and failed rows included: 7 ms per claim at
-- 20,000 rows, 70 ms at 100,000). With hash and merge joins disabled for its one statement, the candidates are
-- joined to the table by primary-key lookups in candidate order, at any estimate: a claim touches the rows it
-- claims and nothing else. A function's settings stay in force for the triggers its statement fires, so the
-- statement-level triggers that join transition tables pin every join setting they depend on.
create function queue.claim_jobs(worker_id text, max_jobs integer, lease_seconds integer default 60)
returns setof public.generation_jobs
language sql
security definer
set search_path = ''
-- join the candidates to the table by primary-key lookups in candidate order, whatever the estimates
set enable_hashjoin = off
set enable_mergejoin = off
as $$
  with candidates as materialized (       -- an optimisation fence: the UPDATE touches at most max_jobs rows
    select j.id
    from public.generation_jobs j
    where j.status = 'queued' and j.run_after <= now()
    order by j.priority desc, j.run_after, j.created_at, j.id
    limit greatest(max_jobs, 0)
    for update skip locked
  )
  update public.generation_jobs j
     set status = 'running',
         attempts = j.attempts + 1,
         claims = j.claims + 1,              -- the new claim's number: the fence of this run's writes
         locked_by = claim_jobs.worker_id,
         lease_expires_at = now() + make_interval(secs => claim_jobs.lease_seconds),
         started_at = now(),
         progress = 0
    from candidates c
   where j.id = c.id
  returning j.*
$$;
comment on function queue.claim_jobs(text, integer, integer) is
  'Claim up to max_jobs queued jobs in the total order (priority desc, run_after, created_at, id) with SKIP '
  'LOCKED: running, attempts + 1, claims + 1 (the claim number that fences this run), leased to worker_id for lease_seconds. Commit at once; never hold it across '
  'generation. The candidates are read in order from generation_jobs_claimable_idx and updated through the '
  'primary key, so the cost does not grow with the table.';

-- ## renew_leases: extend the leases a worker still holds
create function queue.renew_leases(worker_id text, job_ids uuid[], claims integer[], lease_seconds integer default 60)
returns table (job_id uuid, cancel_requested boolean)
language sql
security definer
set search_path = ''
as $$
  with held as materialized (            -- lock in id order (see the top of this file)
    select j.id
      from public.generation_jobs j
      join unnest(renew_leases.job_ids, renew_leases.claims) as h(id, claim) on j.id = h.id
     where j.claims = h.claim
       and j.status = 'running'
       and j.locked_by = renew_leases.worker_id
     order by j.id
       for update of j
  )
  update public.generation_jobs j
     set lease_expires_at = now() + make_interval(secs => renew_leases.lease_seconds)
    from held
   where j.id = held.id
  returning j.id, j.cancel_requested_at is not null
$$;
comment on function queue.renew_leases(text, uuid[], integer[], integer) is
  'Extend the leases of the given (job, claim number) pairs still held by worker_id. Jobs missing from the result '
  'were lost: drop them. cancel_requested tells the worker to stop a job (backs up the cancel NOTIFY).';

-- ## report_progress
create function queue.report_progress(worker_id text, job_id uuid, claim integer, progress real)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with updated as (
    update public.generation_jobs j
       set progress = greatest(j.progress, least(greatest(report_progress.progress, 0), 1))
     where j.id = report_progress.job_id
       and j.claims = report_progress.claim
       and j.status = 'running'
       and j.locked_by = report_progress.worker_id
    returning 1
  )
  select exists (select from updated)
$$;
comment on function queue.report_progress(text, uuid, integer, real) is
  'Record progress 0..1 of the run this claim holds (never moves backwards within it). False = the lease is lost.';

-- ## complete_jobs: running -> succeeded, in batches
create function queue.complete_jobs(worker_id text, results jsonb)
returns setof uuid
language sql
security definer
set search_path = ''
as $$
  with r as (
    select * from jsonb_to_recordset(complete_jobs.results) as r(
           job_id uuid, claim integer, result_path text, result_bytes integer, backend text,
           backend_call_id text, gpu_seconds real, cost_usd numeric)
  ), held as materialized (              -- lock in id order (see the top of this file)
    select j.id
      from public.generation_jobs j
      join r on j.id = r.job_id
     where j.claims = r.claim
       and j.status = 'running'
       and j.locked_by = complete_jobs.worker_id
     order by j.id
       for update of j
  )
  update public.generation_jobs j
     set status = 'succeeded',
         progress = 1,
         finished_at = now(),
         locked_by = null,
         lease_expires_at = null,
         error_code = null,
         error_message = null,
         result_path = r.result_path,
         result_bytes = r.result_bytes,
         backend = r.backend,
         backend_call_id = r.backend_call_id,
         gpu_seconds = r.gpu_seconds,
         cost_usd = r.cost_usd
    from held, r
   where j.id = held.id
     and r.job_id = held.id
     and j.claims = r.claim
  returning j.id
$$;
comment on function queue.complete_jobs(text, jsonb) is
  'Mark jobs succeeded. results: [{job_id, claim, result_path, result_bytes, backend, backend_call_id, '
  'gpu_seconds, cost_usd}]. Returns the ids completed; an id missing from the result lost its lease.';

-- ## retry_delay: exponential backoff with jitter
create function queue.retry_delay(attempt integer, base_seconds double precision default 5,
                                  max_seconds double precision default 600)
returns interval
language sql
volatile                   -- random() jitter
set search_path = ''
as $$
  -- the exponent is capped so that huge attempt numbers cannot overflow double precision
  select make_interval(secs => least(base_seconds * power(2, least(greatest(attempt, 1) - 1, 60)), max_seconds)
                               * (0.75 + random() * 0.5))
$$;
comment on function queue.retry_delay(integer, double precision, double precision) is
  'Delay before retry number `attempt`: base * 2^(attempt-1), capped at max_seconds, with ±25% jitter.';

-- ## fail_job: running -> queued (retry), failed, or canceled when a cancel was requested
create function queue.fail_job(worker_id text, job_id uuid, claim integer, error_code text,
                               error_message text, retryable boolean)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.generation_jobs;
  v_next text;
begin
  select * into v_job from public.generation_jobs j
   where j.id = fail_job.job_id
     and j.claims = fail_job.claim
     and j.status = 'running'
     and j.locked_by = fail_job.worker_id
     for update;
  if not found then
    return null;              -- the lease was lost: someone else owns the job now
  end if;
  v_next := case when v_job.cancel_requested_at is not null then 'canceled'
                 when fail_job.retryable and v_job.attempts < v_job.max_attempts then 'queued'
                 else 'failed' end;
  update public.generation_jobs j
     set status = v_next,
         run_after = case when v_next = 'queued' then now() + queue.retry_delay(v_job.attempts) else j.run_after end,
         finished_at = case when v_next = 'queued' then null else now() end,
         progress = case when v_next = 'queued' then 0 else j.progress end,
         locked_by = null,
         lease_expires_at = null,
         error_code = coalesce(left(fail_job.error_code, 64), 'error'),
         error_message = left(fail_job.error_message, 2000)
   where j.id = fail_job.job_id;
  return v_next;
end;
$$;
comment on function queue.fail_job(text, uuid, integer, text, text, boolean) is
  'Record a failed attempt. A requested cancel wins (canceled); retryable and attempts < max_attempts -> '
  'queued after queue.retry_delay; otherwise failed. Returns the new status, or null when the lease was lost.';

-- ## acknowledge_cancel: running -> canceled, after the worker stopped a job whose cancel was requested
create function queue.acknowledge_cancel(worker_id text, job_id uuid, claim integer)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with updated as (
    update public.generation_jobs j
       set status = 'canceled',
           finished_at = now(),
           locked_by = null,
           lease_expires_at = null
     where j.id = acknowledge_cancel.job_id
       and j.claims = acknowledge_cancel.claim
       and j.status = 'running'
       and j.locked_by = acknowledge_cancel.worker_id
       and j.cancel_requested_at is not null
    returning 1
  )
  select exists (select from updated)
$$;
comment on function queue.acknowledge_cancel(text, uuid, integer) is
  'The worker stopped a job whose cancel was requested: running -> canceled. False = lease lost.';

-- ## release_jobs: running -> queued on graceful shutdown (the attempt is not counted)
create function queue.release_jobs(worker_id text, job_ids uuid[], claims integer[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_released integer;
begin
  with held as materialized (            -- lock in id order (see the top of this file)
    select j.id
      from public.generation_jobs j
      join unnest(release_jobs.job_ids, release_jobs.claims) as h(id, claim) on j.id = h.id
     where j.claims = h.claim
       and j.status = 'running'
       and j.locked_by = release_jobs.worker_id
     order by j.id
       for update of j
  )
  update public.generation_jobs j
     set status = case when j.cancel_requested_at is null then 'queued' else 'canceled' end,
         finished_at = case when j.cancel_requested_at is null then null else now() end,
         attempts = j.attempts - 1,
         run_after = now(),
         progress = 0,
         locked_by = null,
         lease_expires_at = null
    from held
   where j.id = held.id;
  get diagnostics v_released = row_count;
  if v_released > 0 then
    perform pg_notify('generation_jobs_queued', '');
  end if;
  return v_released;
end;
$$;
comment on function queue.release_jobs(text, uuid[], integer[]) is
  'Give back jobs a stopping worker will not finish: queued again at once, attempt not counted '
  '(canceled instead if a cancel was requested). Returns how many were released.';

-- ## reap_expired_leases: running jobs whose worker stopped renewing
create function queue.reap_expired_leases(max_jobs integer default 1000)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reaped integer;
begin
  with expired as materialized (
    select j.id from public.generation_jobs j
    where j.status = 'running' and j.lease_expires_at < now()
    order by j.lease_expires_at
    limit max_jobs
    for update skip locked
  )
  update public.generation_jobs j
     set status = case when j.cancel_requested_at is not null then 'canceled'
                       when j.attempts >= j.max_attempts then 'failed'
                       else 'queued' end,
         finished_at = case when j.cancel_requested_at is not null or j.attempts >= j.max_attempts
                            then now() end,
         run_after = now(),
         progress = case when j.cancel_requested_at is null and j.attempts < j.max_attempts then 0
                         else j.progress end,
         error_code = case when j.cancel_requested_at is null then 'lease_expired' else j.error_code end,
         error_message = case when j.cancel_requested_at is null
                              then format('worker %s stopped renewing its lease during attempt %s '
                                          '(crashed, killed or disconnected)', j.locked_by, j.attempts)
                              else j.error_message end,
         locked_by = null,
         lease_expires_at = null
    from expired e
   where j.id = e.id;
  get diagnostics v_reaped = row_count;
  if v_reaped > 0 then
    perform pg_notify('generation_jobs_queued', '');
  end if;
  return v_reaped;
end;
$$;
comment on function queue.reap_expired_leases(integer) is
  'Requeue running jobs whose lease expired (failed once attempts reach max_attempts; canceled if a cancel '
  'was requested). Safe to run from every worker at once. Returns how many were reaped.';

-- ## record_backend_call: the backend's call id, as soon as the call exists
-- The worker calls it right after spawning the call (Modal's `spawn` returns a FunctionCall id at once, even while
-- the input is queued), so a job can be canceled on the backend from the first second, and a worker that takes
-- over a job re-attaches to its call instead of paying again. Fenced like every worker write. What keeps it:
-- claim_jobs returns the whole row, so the next attempt sees the previous attempt's backend_call_id;
-- reap_expired_leases and release_jobs do not touch it, so a worker that crashed or was stopped leaves the call
-- id to its successor. complete_jobs overwrites it with the call that produced the image; requeue_job clears it,
-- so an admin requeue always generates anew. No trigger fires on the column: the Realtime broadcast only follows
-- status, progress, result and cancel requests.
create function queue.record_backend_call(worker_id text, job_id uuid, claim integer, call_id text)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with updated as (
    update public.generation_jobs j
       set backend_call_id = left(nullif(btrim(record_backend_call.call_id), ''), 200)
     where j.id = record_backend_call.job_id
       and j.claims = record_backend_call.claim
       and j.status = 'running'
       and j.locked_by = record_backend_call.worker_id
    returning 1
  )
  select exists (select from updated)
$$;
comment on function queue.record_backend_call(text, uuid, integer, text) is
  'Record the backend call id (e.g. a Modal FunctionCall id) of the running attempt this worker holds, as soon as '
  'the call exists. False = the lease is lost. Kept by reap and release, so the next attempt can re-attach.';
-- ## Admin helpers (run as postgres in the SQL editor, or through `tenkaigen requeue|cancel|stats`)
-- requeue_job clears everything the previous run left on the row (the row holds one run): its result, backend
-- call, GPU time, cost, start and finish times and error. queue.job_stats sums gpu_seconds and cost_usd over the
-- jobs finished in the last 24 hours and the cost alert reads them, so a job that succeeded days ago, then was
-- requeued and canceled today, must not count its old run's cost as spent today; nor should a queued job show the
-- old run's start and backend call. The request and what insert resolved it to (seed included, so the rerun
-- repeats it), priority, max_attempts and created_at are kept. queue.job_completions keeps the audit of each
-- successful attempt, and the run being cleared is first copied into queue.job_runs (its spend stays counted in
-- the 24 h sums, by the time it finished: supabase/migrations/*_audit.sql).
create function queue.requeue_job(job_id uuid, reset_attempts boolean default true)
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
  insert into queue.job_runs (job_id, attempt, claim, status, started_at, finished_at, backend, backend_call_id,
                              gpu_seconds, cost_usd)
  select j.id, j.attempts, j.claims, j.status, j.started_at, j.finished_at, j.backend, j.backend_call_id, j.gpu_seconds,
         j.cost_usd
    from public.generation_jobs j
   where j.id = requeue_job.job_id;
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
  'everything its previous run recorded (result, backend call, GPU time, cost, start and finish times, error) '
  'after copying that run into queue.job_runs. Returns queued, or the live status it already had.';

create function queue.cancel_job(job_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_result text;
begin
  v_result := queue.request_cancel(cancel_job.job_id);
  if v_result is null then
    raise exception using errcode = 'P0002', message = format('job_id: no job %s', cancel_job.job_id);
  end if;
  return v_result;
end;
$$;
comment on function queue.cancel_job(uuid) is 'Admin: cancel any job (same semantics as the client RPC).';

-- ## Retention through an outbox of Storage deletions
-- SQL never deletes from storage.objects (Supabase: objects are removed through the Storage API, which also
-- removes the file). So the purge cannot delete rows and images in one transaction; instead, in the purge's own
-- transaction, every purged job queues the deletion of its image in queue.storage_deletions, and the worker
-- drains that outbox through the Storage API (worker/maintenance.py): a Storage error, a crash or a shutdown
-- between the two leaves the rows there for the next run, and no image is orphaned. The key queued is
-- `<user_id>/<job_id>.png` for EVERY purged job, not its result_path: a job that succeeded, was requeued and then
-- failed has no result_path any more but still has its first run's image. Deleting a missing object is a no-op,
-- so queuing a job that never produced one costs one cheap request. Input images (bucket generation-inputs,
-- `<user_id>/<file name>`) are the user's, not the job's: a user may reuse one for many jobs, so they are not
-- deleted here.
create table queue.storage_deletions (
  id bigint generated always as identity primary key,
  bucket text not null,
  object_key text not null,
  job_id uuid,
  queued_at timestamptz not null default now(),
  attempts integer not null default 0,
  claimed_until timestamptz,                -- a drainer holds the row until then (a crashed one lets go)
  last_error text
);
create index storage_deletions_bucket_id_idx on queue.storage_deletions (bucket, id);
comment on table queue.storage_deletions is
  'Outbox of Storage objects to delete (bucket, object_key), written by queue.purge_finished_jobs in the same '
  'transaction as the rows it deletes; drained by the worker through the Storage API with retries.';
revoke all on table queue.storage_deletions from public, anon, authenticated, service_role;

-- The audit rows (queue.job_completions) and kept runs (queue.job_runs) go with their jobs.
create function queue.purge_finished_jobs(older_than interval default interval '30 days',
                                          max_jobs integer default 10000)
returns table (job_id uuid, object_key text)
language sql
security definer
set search_path = ''
as $$
  with doomed as materialized (
    select j.id from public.generation_jobs j
    where j.finished_at < now() - purge_finished_jobs.older_than
    order by j.finished_at
    limit purge_finished_jobs.max_jobs
    for update skip locked
  ), purged as (
    delete from public.generation_jobs j
     using doomed d
     where j.id = d.id
    returning j.id, j.user_id::text || '/' || j.id::text || '.png' as object_key
  ), audit as (
    delete from queue.job_completions c using purged p where c.job_id = p.id
  ), runs as (
    delete from queue.job_runs r using purged p where r.job_id = p.id
  ), outbox as (
    insert into queue.storage_deletions (bucket, object_key, job_id)
    select 'generated-designs', p.object_key, p.id from purged p
  )
  select id, object_key from purged
$$;
comment on function queue.purge_finished_jobs(interval, integer) is
  'Retention: delete finished jobs older than older_than and, in the same transaction, queue the deletion of '
  'each one''s image <user_id>/<job_id>.png in queue.storage_deletions. Returns the jobs and keys queued.';

-- ## Draining the outbox: claim a batch, delete the objects, then finish it
-- A claim holds its rows for lease_seconds (claimed_until), so workers draining at once take different rows and
-- a drainer that died lets its rows go. finish deletes the rows it was given (error null) or, on a Storage
-- error, releases them at once with the error for the next run.
create function queue.claim_storage_deletions(bucket text, max_rows integer default 500,
                                              lease_seconds integer default 300)
returns table (id bigint, object_key text)
language sql
security definer
set search_path = ''
as $$
  with picked as materialized (
    select d.id from queue.storage_deletions d
    where d.bucket = claim_storage_deletions.bucket
      and (d.claimed_until is null or d.claimed_until < now())
    order by d.id
    limit greatest(claim_storage_deletions.max_rows, 0)
    for update skip locked
  )
  update queue.storage_deletions d
     set claimed_until = now() + make_interval(secs => claim_storage_deletions.lease_seconds),
         attempts = d.attempts + 1
    from picked p
   where d.id = p.id
  returning d.id, d.object_key
$$;
comment on function queue.claim_storage_deletions(text, integer, integer) is
  'Take up to max_rows queued deletions of one bucket (oldest first, SKIP LOCKED), held for lease_seconds. '
  'Delete the objects, then call queue.finish_storage_deletions.';

create function queue.finish_storage_deletions(ids bigint[], error text default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  if finish_storage_deletions.error is null then
    delete from queue.storage_deletions d where d.id = any (finish_storage_deletions.ids);
  else
    update queue.storage_deletions d
       set claimed_until = null, last_error = left(finish_storage_deletions.error, 2000)
     where d.id = any (finish_storage_deletions.ids);
  end if;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
comment on function queue.finish_storage_deletions(bigint[], text) is
  'error null: the objects are deleted, remove the rows. Otherwise release them at once with the error, for the '
  'next drain. Returns how many rows it touched.';

-- ## job_stats: the active jobs and the last 24 hours, never the whole history
-- The table is mostly finished jobs kept for retention (30 days by default: millions of rows at scale), and every
-- worker reads this view every 15 s for its gauges (and before each cost-alert check). So it is three small
-- aggregates, each bounded by an index:
--   * queued, claimable, oldest_claimable_age_seconds: exact, over the queued rows only, read from the partial
--     index generation_jobs_claimable_idx (where status = 'queued'; its columns are all these need).
--   * running: exact, over the running rows only (the partial index generation_jobs_running_idx).
--   * the finished statuses are counted over the last 24 hours only, through generation_jobs_finished_at_idx,
--     the same window as gpu_seconds_last_24h and cost_usd_last_24h (one range scan serves them all, and
--     finished_last_hour too): succeeded_last_24h, failed_last_24h, canceled_last_24h.
--   * gpu_seconds_last_24h and cost_usd_last_24h add the runs a requeue cleared (queue.job_runs, by their
--     finished_at through job_runs_finished_at_idx): a requeue keeps real spend.
-- It is security_invoker: the worker reads it under the "workers read every job" policy.
create view queue.job_stats
with (security_invoker = true)
as
select
  q.queued,
  q.claimable,
  r.running,
  f.succeeded_last_24h,
  f.failed_last_24h,
  f.canceled_last_24h,
  q.oldest_claimable_age_seconds,
  f.finished_last_hour,
  f.gpu_seconds_last_24h + k.gpu_seconds as gpu_seconds_last_24h,
  f.cost_usd_last_24h + k.cost_usd as cost_usd_last_24h
from (
  -- the queued rows only: generation_jobs_claimable_idx
  select count(*) as queued,
         count(*) filter (where j.run_after <= now()) as claimable,
         extract(epoch from now() - min(j.created_at) filter (where j.run_after <= now()))
           as oldest_claimable_age_seconds
  from public.generation_jobs j
  where j.status = 'queued'
) q
cross join (
  -- the running rows only: generation_jobs_running_idx
  select count(*) as running
  from public.generation_jobs j
  where j.status = 'running'
) r
cross join (
  -- one day of finished rows: a range of generation_jobs_finished_at_idx
  select count(*) filter (where j.status = 'succeeded') as succeeded_last_24h,
         count(*) filter (where j.status = 'failed') as failed_last_24h,
         count(*) filter (where j.status = 'canceled') as canceled_last_24h,
         count(*) filter (where j.finished_at > now() - interval '1 hour') as finished_last_hour,
         coalesce(sum(j.gpu_seconds), 0) as gpu_seconds_last_24h,
         coalesce(sum(j.cost_usd), 0) as cost_usd_last_24h
  from public.generation_jobs j
  where j.finished_at > now() - interval '24 hours'
) f
cross join (
  -- the runs requeues cleared, finished in the same window: a range of job_runs_finished_at_idx
  select coalesce(sum(r.gpu_seconds), 0) as gpu_seconds,
         coalesce(sum(r.cost_usd), 0) as cost_usd
  from queue.job_runs r
  where r.finished_at > now() - interval '24 hours'
) k;
comment on view queue.job_stats is
  'Admin: queue depth (queued, claimable, running: exact), oldest claimable job, and the jobs finished in the '
  'last 24 h by status, with their GPU seconds and cost (runs cleared by a requeue included). Reads the queued and running rows and one day of '
  'finished ones through their indexes, never the whole history.';

-- ## Privileges: the worker role only
revoke all on all functions in schema queue from public, anon, authenticated, service_role;
grant execute on function
  queue.claim_jobs(text, integer, integer),
  queue.renew_leases(text, uuid[], integer[], integer),
  queue.report_progress(text, uuid, integer, real),
  queue.complete_jobs(text, jsonb),
  queue.fail_job(text, uuid, integer, text, text, boolean),
  queue.acknowledge_cancel(text, uuid, integer),
  queue.release_jobs(text, uuid[], integer[]),
  queue.reap_expired_leases(integer),
  queue.record_backend_call(text, uuid, integer, text),
  queue.purge_finished_jobs(interval, integer),
  queue.claim_storage_deletions(text, integer, integer),
  queue.finish_storage_deletions(bigint[], text)
to tenkaigen_worker;
revoke all on queue.job_stats from public, anon, authenticated, service_role;
grant select on queue.job_stats to tenkaigen_worker;
