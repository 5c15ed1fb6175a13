-- The worker's API: the only way a worker changes a job. The SQL here is the single source of truth for the
-- state machine; the Python worker calls these functions and holds no copy of it.
--
-- Fencing: every write on behalf of a worker applies only while
--   status = 'running' and locked_by = <worker_id> and attempts = <attempt it claimed>
-- so a worker that lost its lease (reaped, requeued, canceled, claimed again by someone else) changes nothing:
-- it gets 0 rows / false / null back and must drop its result.
--
-- All functions are security definer with an empty search_path; EXECUTE is granted to tenkaigen_worker only.

-- ## claim_jobs: queued -> running
create function queue.claim_jobs(worker_id text, max_jobs integer, lease_seconds integer default 60)
returns setof public.generation_jobs
language sql
security definer
set search_path = ''
as $$
  with candidates as materialized (       -- an optimisation fence: the UPDATE touches at most max_jobs rows
    select j.id
    from public.generation_jobs j
    where j.status = 'queued' and j.run_after <= now()
    order by j.priority desc, j.run_after, j.created_at
    limit greatest(max_jobs, 0)
    for update skip locked
  )
  update public.generation_jobs j
     set status = 'running',
         attempts = j.attempts + 1,
         locked_by = claim_jobs.worker_id,
         lease_expires_at = now() + make_interval(secs => claim_jobs.lease_seconds),
         started_at = now(),
         progress = 0
    from candidates c
   where j.id = c.id
  returning j.*
$$;
comment on function queue.claim_jobs(text, integer, integer) is
  'Claim up to max_jobs queued jobs (priority desc, run_after, created_at) with SKIP LOCKED: running, '
  'attempts + 1, leased to worker_id for lease_seconds. Commit at once; never hold it across generation.';

-- ## renew_leases: extend the leases a worker still holds
create function queue.renew_leases(worker_id text, job_ids uuid[], attempts integer[], lease_seconds integer default 60)
returns table (job_id uuid, cancel_requested boolean)
language sql
security definer
set search_path = ''
as $$
  update public.generation_jobs j
     set lease_expires_at = now() + make_interval(secs => renew_leases.lease_seconds)
    from unnest(renew_leases.job_ids, renew_leases.attempts) as held(id, attempt)
   where j.id = held.id
     and j.attempts = held.attempt
     and j.status = 'running'
     and j.locked_by = renew_leases.worker_id
  returning j.id, j.cancel_requested_at is not null
$$;
comment on function queue.renew_leases(text, uuid[], integer[], integer) is
  'Extend the leases of the given (job, attempt) pairs still held by worker_id. Jobs missing from the result '
  'were lost: drop them. cancel_requested tells the worker to stop a job (backs up the cancel NOTIFY).';

-- ## report_progress
create function queue.report_progress(worker_id text, job_id uuid, attempt integer, progress real)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with updated as (
    update public.generation_jobs j
       set progress = greatest(j.progress, least(greatest(report_progress.progress, 0), 1))
     where j.id = report_progress.job_id
       and j.attempts = report_progress.attempt
       and j.status = 'running'
       and j.locked_by = report_progress.worker_id
    returning 1
  )
  select exists (select from updated)
$$;
comment on function queue.report_progress(text, uuid, integer, real) is
  'Record progress 0..1 (never moves backwards within an attempt). False = the lease is lost.';

-- ## complete_jobs: running -> succeeded, in batches
create function queue.complete_jobs(worker_id text, results jsonb)
returns setof uuid
language sql
security definer
set search_path = ''
as $$
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
    from jsonb_to_recordset(complete_jobs.results) as r(
           job_id uuid, attempt integer, result_path text, result_bytes integer, backend text,
           backend_call_id text, gpu_seconds real, cost_usd numeric)
   where j.id = r.job_id
     and j.attempts = r.attempt
     and j.status = 'running'
     and j.locked_by = complete_jobs.worker_id
  returning j.id
$$;
comment on function queue.complete_jobs(text, jsonb) is
  'Mark jobs succeeded. results: [{job_id, attempt, result_path, result_bytes, backend, backend_call_id, '
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
create function queue.fail_job(worker_id text, job_id uuid, attempt integer, error_code text,
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
     and j.attempts = fail_job.attempt
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
create function queue.acknowledge_cancel(worker_id text, job_id uuid, attempt integer)
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
       and j.attempts = acknowledge_cancel.attempt
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
create function queue.release_jobs(worker_id text, job_ids uuid[], attempts integer[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_released integer;
begin
  update public.generation_jobs j
     set status = case when j.cancel_requested_at is null then 'queued' else 'canceled' end,
         finished_at = case when j.cancel_requested_at is null then null else now() end,
         attempts = j.attempts - 1,
         run_after = now(),
         progress = 0,
         locked_by = null,
         lease_expires_at = null
    from unnest(release_jobs.job_ids, release_jobs.attempts) as held(id, attempt)
   where j.id = held.id
     and j.attempts = held.attempt
     and j.status = 'running'
     and j.locked_by = release_jobs.worker_id;
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

-- ## Admin helpers (run as postgres in the SQL editor, or through `tenkaigen requeue|cancel|stats`)
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
  update public.generation_jobs j
     set status = 'queued',
         attempts = case when requeue_job.reset_attempts then 0 else least(j.attempts, j.max_attempts - 1) end,
         run_after = now(),
         progress = 0,
         finished_at = null,
         cancel_requested_at = null,
         error_code = null,
         error_message = null,
         result_path = null,
         result_bytes = null
   where j.id = requeue_job.job_id;
  perform pg_notify('generation_jobs_queued', '');
  return 'queued';
end;
$$;
comment on function queue.requeue_job(uuid, boolean) is
  'Admin: put a failed, canceled or succeeded job back in the queue (attempts reset by default). '
  'Returns queued, or the live status it already had.';

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

create function queue.purge_finished_jobs(older_than interval default interval '30 days',
                                          max_jobs integer default 10000)
returns table (job_id uuid, result_path text)
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
  )
  delete from public.generation_jobs j
   using doomed d
   where j.id = d.id
  returning j.id, j.result_path
$$;
comment on function queue.purge_finished_jobs(interval, integer) is
  'Retention: delete finished jobs older than older_than. Returns their result paths so the caller can '
  'remove the stored images through the Storage API (never delete from storage.objects in SQL).';

create view queue.job_stats
with (security_invoker = true)
as
select
  count(*) filter (where status = 'queued') as queued,
  count(*) filter (where status = 'queued' and run_after <= now()) as claimable,
  count(*) filter (where status = 'running') as running,
  count(*) filter (where status = 'succeeded') as succeeded,
  count(*) filter (where status = 'failed') as failed,
  count(*) filter (where status = 'canceled') as canceled,
  extract(epoch from now() - min(created_at) filter (where status = 'queued' and run_after <= now()))
    as oldest_claimable_age_seconds,
  count(*) filter (where finished_at > now() - interval '1 hour') as finished_last_hour,
  coalesce(sum(gpu_seconds) filter (where finished_at > now() - interval '24 hours'), 0) as gpu_seconds_last_24h,
  coalesce(sum(cost_usd) filter (where finished_at > now() - interval '24 hours'), 0) as cost_usd_last_24h
from public.generation_jobs;
comment on view queue.job_stats is 'Admin: queue depth by status, oldest claimable job, throughput and cost.';

-- ## Privileges: the worker role only
revoke all on all functions in schema queue from public;
grant execute on function
  queue.claim_jobs(text, integer, integer),
  queue.renew_leases(text, uuid[], integer[], integer),
  queue.report_progress(text, uuid, integer, real),
  queue.complete_jobs(text, jsonb),
  queue.fail_job(text, uuid, integer, text, text, boolean),
  queue.acknowledge_cancel(text, uuid, integer),
  queue.release_jobs(text, uuid[], integer[]),
  queue.reap_expired_leases(integer),
  queue.purge_finished_jobs(interval, integer)
to tenkaigen_worker;
grant select on queue.job_stats to tenkaigen_worker;
