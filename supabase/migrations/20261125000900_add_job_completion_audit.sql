-- An append-only audit of completions, kept by the database itself: one row each time a job becomes
-- succeeded, with the attempt and the worker that held it. It proves "completed exactly once" without trusting
-- any worker's logs (scripts/chaos checks it), and tells an admin who produced a result.
--
-- There is deliberately no unique constraint on job_id: if a job were ever completed twice the audit must show
-- it, not hide it. An admin requeue of a succeeded job legitimately adds a second row with a new attempt.

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

create function queue.record_completion()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into queue.job_completions (job_id, attempt, worker_id, result_path)
  values (new.id, new.attempts, old.locked_by, new.result_path);
  return null;
end;
$$;

comment on function queue.record_completion() is
  'Trigger: append (job, attempt, worker that held the lease, result_path) to queue.job_completions.';

create trigger generation_jobs_record_completion
  after update of status on public.generation_jobs
  for each row
  when (new.status = 'succeeded' and old.status is distinct from 'succeeded')
  execute function queue.record_completion();

revoke all on function queue.record_completion() from public;
grant select on queue.job_completions to tenkaigen_worker;

-- purge the audit rows with their jobs
create or replace function queue.purge_finished_jobs(older_than interval default interval '30 days',
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
  ), purged as (
    delete from public.generation_jobs j
     using doomed d
     where j.id = d.id
    returning j.id, j.result_path
  ), audit as (
    delete from queue.job_completions c using purged p where c.job_id = p.id
  )
  select id, result_path from purged
$$;
