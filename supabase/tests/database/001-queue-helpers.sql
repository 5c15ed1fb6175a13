-- Queue test helpers in schema `tests`, for the pgTAP files of the queue functions and the state machine
-- (claim_jobs/, fail_job/, transitions/, admin/ …). Same pattern as 000-setup-tests-hooks.sql: committed, not
-- rolled back, so later files can call them; never part of the migrations.
begin;
select plan(1);

-- A job that reached a final status the way the queue gets there (queued -> running -> final), with the
-- columns each status requires: succeeded has result_path = <user_id>/<job_id>.png, failed has an error_code,
-- canceled has cancel_requested_at. finished_at may be back-dated (retention tests).
create or replace function tests.make_finished_job(identifier text, status text,
                                                   finished_at timestamptz default now())
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid := tests.make_running_job(identifier, 'worker-a', 60, 1);
begin
  if status not in ('succeeded', 'failed', 'canceled') then
    raise exception 'tests.make_finished_job: % is not a final status', status;
  end if;
  update public.generation_jobs j
     set status = make_finished_job.status,
         locked_by = null,
         lease_expires_at = null,
         finished_at = make_finished_job.finished_at,
         progress = case when make_finished_job.status = 'succeeded' then 1 else 0.5 end,
         result_path = case when make_finished_job.status = 'succeeded'
                            then j.user_id::text || '/' || j.id::text || '.png' end,
         result_bytes = case when make_finished_job.status = 'succeeded' then 12345 end,
         error_code = case when make_finished_job.status = 'failed' then 'test_error' end,
         error_message = case when make_finished_job.status = 'failed' then 'failed for a test' end,
         cancel_requested_at = case when make_finished_job.status = 'canceled' then now() end
   where j.id = v_id;
  return v_id;
end;
$$;

-- The whole row as jsonb: take it before a call, compare after, to prove a fenced call changed nothing.
create or replace function tests.job_snapshot(job_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select to_jsonb(j) from public.generation_jobs j where j.id = job_snapshot.job_id
$$;

-- The object key a job's result must have: <user_id>/<job_id>.png.
create or replace function tests.result_path_for(job_id uuid)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select j.user_id::text || '/' || j.id::text || '.png' from public.generation_jobs j where j.id = result_path_for.job_id
$$;

-- A direct admin UPDATE of a job to `status`, setting the columns that status requires (lease while running,
-- result_path when succeeded, error_code when failed, finished_at when final) so that only the transition
-- trigger can object. For the state-machine tests: the trigger, not this helper, decides what is legal.
create or replace function tests.update_status(job_id uuid, status text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  update public.generation_jobs j
     set status = update_status.status,
         attempts = case when update_status.status = 'running' then least(j.attempts + 1, j.max_attempts)
                         else j.attempts end,
         locked_by = case when update_status.status = 'running' then 'admin-session' end,
         lease_expires_at = case when update_status.status = 'running' then now() + interval '60 seconds' end,
         started_at = case when update_status.status = 'running' then now() else j.started_at end,
         finished_at = case when update_status.status in ('succeeded', 'failed', 'canceled') then now() end,
         progress = case when update_status.status = 'succeeded' then 1
                         when update_status.status in ('queued', 'running') then 0 else j.progress end,
         result_path = case when update_status.status = 'succeeded'
                            then j.user_id::text || '/' || j.id::text || '.png' end,
         result_bytes = case when update_status.status = 'succeeded' then 1 end,
         error_code = case when update_status.status = 'failed' then coalesce(j.error_code, 'admin')
                           else j.error_code end,
         cancel_requested_at = case when update_status.status = 'canceled' then coalesce(j.cancel_requested_at, now())
                                    when update_status.status = 'queued' then null
                                    else j.cancel_requested_at end
   where j.id = update_status.job_id;
  if not found then
    raise exception 'tests.update_status: no job %', job_id;
  end if;
end;
$$;

-- Run one statement as another database role (tenkaigen_worker, anon…) and switch back, so pgTAP can assert
-- on it: pgTAP lives in schema extensions, which tenkaigen_worker may not use. Pass it to throws_ok/lives_ok:
--   select throws_ok($$select tests.run_as('tenkaigen_worker', $q$delete from public.generation_jobs$q$)$$, …)
-- On an error the caller's subtransaction (throws_ok) restores the role. Not security definer: SET ROLE needs
-- the caller's own rights.
create or replace function tests.run_as(role_name text, statement text)
returns void
language plpgsql
as $$
declare
  v_previous_role text := current_setting('role');
begin
  perform set_config('role', role_name, true);
  execute statement;
  perform set_config('role', v_previous_role, true);
end;
$$;

grant execute on function tests.make_finished_job(text, text, timestamptz), tests.job_snapshot(uuid),
  tests.result_path_for(uuid) to anon, authenticated, service_role;

select ok(to_regprocedure('tests.make_finished_job(text, text, timestamptz)') is not null,
          'queue test helpers are installed');
select * from finish();
commit;
