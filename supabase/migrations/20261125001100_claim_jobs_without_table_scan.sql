-- queue.claim_jobs without a table scan: a claim costs the same with 1,000 or 1,000,000 rows in the table.
--
-- Why: the body of 20261125000600 joins a `materialized` CTE of candidates back to generation_jobs. A SQL
-- function is planned without knowing `max_jobs`, so the planner guesses the LIMIT keeps 10 % of the queued rows
-- and joins them with a hash join over a sequential scan of the whole table (succeeded and failed rows
-- included): 7 ms per claim at 20,000 rows, 70 ms at 100,000, growing with the table, not with the work.
--
-- What changes: only the function's settings, and the broadcast trigger's. With hash and merge joins disabled
-- for its one statement, the planner joins the candidates to the table with a nested loop over the primary key,
-- in candidate order, at any estimate: a claim touches the rows it claims and nothing else. The body is the same query as before: same
-- order (priority desc, run_after, created_at), same SKIP LOCKED row locks, at most max_jobs rows.
--
-- Settings of a function stay in force for the triggers its statement fires, and PL/pgSQL keeps the first plan
-- it makes for the session. So the broadcast trigger (20261125001000), which joins its transition tables and
-- must never use a nested loop, now pins every join setting it depends on instead of inheriting the caller's.

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
  'attempts + 1, leased to worker_id for lease_seconds. Commit at once; never hold it across generation. '
  'The candidates are found through generation_jobs_claimable_idx and updated through the primary key, so the '
  'cost does not grow with the table (20261125001100).';

-- ## The broadcast trigger plans the same whoever fires it
alter function public.generation_jobs_broadcast_updated() set enable_hashjoin = on;
alter function public.generation_jobs_broadcast_updated() set enable_mergejoin = on;
