-- queue.claim_jobs claims in a total order: (priority desc, run_after, created_at, id).
--
-- Why: the claim ordered its candidates by (priority desc, run_after, created_at) and nothing else. Rows equal on
-- all three are common, not a corner case: jobs inserted by one statement (or one transaction) share
-- created_at = now(), and queue.release_jobs / queue.reap_expired_leases set run_after = now() for every job they
-- give back in one call. Such rows were claimed in whatever order the index happened to hold them (in practice
-- heap position, which changes with every update), so the claim order was not a property of the data, a test
-- could pass by luck, and public.generation_job_queue_position, which already breaks ties by id, could tell a
-- client "1st" while a worker claimed a tied job before it.
--
-- What changes:
--   * generation_jobs_claimable_idx gets `id` as its last column, so the index holds exactly the claim order and
--     the claim still reads it in order under its LIMIT, with no sort. The new index is built under a temporary
--     name, the old one dropped, and the new one renamed to generation_jobs_claimable_idx. Building it takes a
--     SHARE lock on generation_jobs (writes wait, reads do not) for one pass over the table; the drop and
--     rename hold an ACCESS EXCLUSIVE lock only from then to the commit of this migration.
--   * queue.claim_jobs orders by (priority desc, run_after, created_at, id). Same body otherwise, same settings
--     (search_path, and hash/merge joins off: 20261125001100), same grants (`create or replace` keeps them).
--   * public.generation_job_queue_position is unchanged: it already counts the jobs ahead in this very order
--     (`(run_after, created_at, id) <` within a priority); only its comment now names the order.

-- ## The claim index holds the total claim order
create index generation_jobs_claimable_total_order_idx on public.generation_jobs
  (priority desc, run_after, created_at, id)
  where status = 'queued';
drop index public.generation_jobs_claimable_idx;
alter index public.generation_jobs_claimable_total_order_idx rename to generation_jobs_claimable_idx;
comment on index public.generation_jobs_claimable_idx is
  'The claim path: queued rows only, in claim order (priority desc, run_after, created_at, id), exactly the '
  'ORDER BY of queue.claim_jobs and the order of public.generation_job_queue_position.';

-- ## Functions
create or replace function queue.claim_jobs(worker_id text, max_jobs integer, lease_seconds integer default 60)
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
  'LOCKED: running, attempts + 1, leased to worker_id for lease_seconds. Commit at once; never hold it across '
  'generation. The candidates are read in order from generation_jobs_claimable_idx and updated through the '
  'primary key, so the cost does not grow with the table (20261125001100, 20261125001200).';

comment on function public.generation_job_queue_position(uuid) is
  'Client RPC: 1-based position of your queued job in claim order (priority desc, run_after, created_at, id: '
  'the order of queue.claim_jobs); null when it is not queued (or not yours).';
