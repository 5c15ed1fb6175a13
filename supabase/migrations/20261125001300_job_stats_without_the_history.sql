-- queue.job_stats reads the active jobs and the last 24 hours, never the whole history.
--
-- Why: the view of 20261125000600 is one aggregate over every row of generation_jobs (count by status, all time),
-- so it is a sequential scan of the table, and the table is mostly finished jobs kept for retention (30 days by
-- default: millions of rows at scale). Every worker reads it every 15 s for its gauges (and before each cost-alert
-- check), and `tenkaigen stats` reads it: 90 ms at 200,000 finished rows on a small machine, growing with the
-- history, not with the work in flight.
--
-- What changes: the view is three small aggregates, each bounded by an index.
--   * queued, claimable, oldest_claimable_age_seconds: exact, over the queued rows only, read from the partial
--     index generation_jobs_claimable_idx (where status = 'queued'; its columns are all these need).
--   * running: exact, over the running rows only (the partial index generation_jobs_running_idx).
--   * the finished statuses are counted over the last 24 hours only, through generation_jobs_finished_at_idx,
--     the same window as gpu_seconds_last_24h and cost_usd_last_24h (one range scan serves them all, and
--     finished_last_hour too). Their columns say so: succeeded_last_24h, failed_last_24h, canceled_last_24h
--     replace the all-time succeeded, failed and canceled, which no query can count without reading the history.
-- So the cost follows the queued and running jobs plus one day of finished ones, whatever the retention.
--
-- Columns cannot be renamed by `create or replace view`, so the view is dropped and created again, still
-- security_invoker (the worker reads it under the "workers read every job" policy of 20261125000500), with its
-- SELECT grant to tenkaigen_worker given again. The worker reads the new columns from this release on
-- (worker/queries.sql job_stats, worker/jobs.py JobStats); a worker of an older release gets an error from its
-- gauge job (logged, retried every 15 s, nothing else affected) until it is upgraded.

-- ## The view
drop view queue.job_stats;
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
  f.gpu_seconds_last_24h,
  f.cost_usd_last_24h
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
) f;
comment on view queue.job_stats is
  'Admin: queue depth (queued, claimable, running: exact), oldest claimable job, and the jobs finished in the '
  'last 24 h by status, with their GPU seconds and cost. Reads the queued and running rows and one day of '
  'finished ones through their indexes, never the whole history (20261125001300).';

-- ## Privileges: the worker role only, as before
grant select on queue.job_stats to tenkaigen_worker;
