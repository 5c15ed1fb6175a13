-- The completion audit (20261125000900) written once per statement instead of once per row.
--
-- Why: `queue.record_completion()` ran as a row-level PL/pgSQL trigger, one function call and one single-row
-- INSERT per completed job: about a tenth of the database's CPU per job on the queue path, where
-- `queue.complete_jobs` completes up to 200 jobs per statement. The broadcast trigger (20261125001000) already
-- captures every UPDATE's old and new rows as transition tables, so reading them again here is almost free.
--
-- What changes: the same audit rows (job, attempt, the worker that held the lease, result_path), for the same
-- transitions (any status -> succeeded, by whatever statement), now written by one INSERT … SELECT per UPDATE
-- statement. A statement that completes nothing inserts nothing. Like the broadcast trigger, it pins its join
-- settings: PL/pgSQL keeps the first plan it makes for the session, and a nested loop planned for a one-row
-- statement would join a 200-row batch quadratically.

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
  'queue.job_completions for every row that became succeeded (see migration 20261125001400).';
revoke all on function queue.record_completions() from public, anon, authenticated;

drop trigger generation_jobs_record_completion on public.generation_jobs;
drop function queue.record_completion();

create trigger generation_jobs_record_completions
  after update on public.generation_jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function queue.record_completions();
