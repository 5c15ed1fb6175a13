-- An append-only audit of completions, kept by the database itself: one row each time a job becomes
-- succeeded, with the attempt and the worker that held it. It proves "completed exactly once" without trusting
-- any worker's logs (scripts/chaos checks it), and tells an admin who produced a result.
--
-- There is deliberately no unique constraint on job_id: if a job were ever completed twice the audit must show
-- it, not hide it. An admin requeue of a succeeded job legitimately adds a second row with a new attempt.
--
-- The rows are written once per UPDATE statement, not once per row: queue.complete_jobs completes up to 200 jobs
-- per statement, and a row-level PL/pgSQL trigger (one call and one single-row INSERT per job) cost about a tenth
-- of the database's CPU per job on the queue path. The statement's transition tables (which the broadcast trigger
-- captures anyway) give every changed row at once; a statement that completes nothing inserts nothing. The
-- trigger function pins its join settings: PL/pgSQL keeps the first plan it makes for the session, and a nested
-- loop planned for a one-row statement would join a 200-row batch quadratically.
-- queue.purge_finished_jobs deletes the audit rows with their jobs.

create table queue.job_completions (
  id bigint generated always as identity primary key,
  job_id uuid not null,
  attempt integer not null,
  worker_id text,
  result_path text not null,
  completed_at timestamptz not null default now()
);
create index job_completions_job_id_idx on queue.job_completions (job_id);
comment on table queue.job_completions is
  'Append-only: one row per transition to succeeded (job, attempt, worker). Purged with its job.';
revoke all on table queue.job_completions from public, anon, authenticated, service_role;
grant select on queue.job_completions to tenkaigen_worker;

create function queue.record_completions()
returns trigger
language plpgsql
security definer
set search_path = ''
set enable_nestloop = off
set enable_hashjoin = on
set enable_mergejoin = on
as $$
begin
  insert into queue.job_completions (job_id, attempt, worker_id, result_path)
  select n.id, n.attempts, o.locked_by, n.result_path
  from new_rows n
  join old_rows o on o.id = n.id
  where n.status = 'succeeded' and o.status is distinct from 'succeeded';
  return null;
end;
$$;
comment on function queue.record_completions() is
  'Trigger (per UPDATE statement): append (job, attempt, worker that held the lease, result_path) to '
  'queue.job_completions for every row that became succeeded.';
revoke all on function queue.record_completions() from public, anon, authenticated, service_role;

create trigger generation_jobs_record_completions
  after update on public.generation_jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function queue.record_completions();

-- ## The spend of earlier runs: queue.job_runs
-- A job row holds one run: queue.requeue_job clears its result, backend call, GPU time and cost for the next run.
-- That spend was real, so before clearing it requeue_job copies the run it ends into queue.job_runs (status,
-- attempt, backend, call id, GPU seconds, cost, finished_at). queue.job_stats and queue.record_cost_alert add
-- these kept runs to the live rows, each by the time its run finished: a job completed, requeued and completed
-- again counts both runs, and a run that finished three days ago still costs nothing today. Written only by
-- requeue_job (admin), never on the queue path. queue.purge_finished_jobs deletes the rows with their jobs.
create table queue.job_runs (
  id bigint generated always as identity primary key,
  job_id uuid not null,
  attempt integer not null,
  claim integer not null,                   -- the claim number that fenced the run (generation_jobs.claims)
  status text not null,
  started_at timestamptz,
  finished_at timestamptz,
  backend text,
  backend_call_id text,
  gpu_seconds real,
  cost_usd numeric(12, 6),
  requeued_at timestamptz not null default now()
);
create index job_runs_job_id_idx on queue.job_runs (job_id);
create index job_runs_finished_at_idx on queue.job_runs (finished_at);
comment on table queue.job_runs is
  'The runs a requeue cleared from their job (status, attempt, backend call, GPU seconds, cost, finished_at), '
  'so the 24 h spend keeps them. Written by queue.requeue_job; purged with its job.';
revoke all on table queue.job_runs from public, anon, authenticated, service_role;
grant select on queue.job_runs to tenkaigen_worker;
