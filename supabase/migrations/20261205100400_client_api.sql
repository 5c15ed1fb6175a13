-- What a signed-in client may do with generation jobs: insert its own rows (request columns only), read its
-- own rows, cancel its own jobs and ask for a queued job's position. `anon` gets nothing here (it reads styles).
--
-- The privileges are exact whatever the project's default privileges (the discipline in the first migration):
-- a table-level INSERT would cover every column, so the column-level grant would restrict nothing (a client could
-- insert status, priority, max_attempts, created_at, back-dating past the hourly quota, lora…), and TRUNCATE is
-- not subject to row-level security. So every API role is revoked first, then given exactly: select, and insert
-- of the 14 request columns, to authenticated; nothing to anon or service_role. service_role bypasses row-level
-- security and is trusted, but nothing uses it on these tables (the worker connects as tenkaigen_worker or
-- postgres and uses the service key for Storage only); a project that wants the service key to manage jobs
-- through the Data API grants that in a migration of its own.

alter table public.generation_jobs enable row level security;

revoke all on table public.generation_jobs from anon, authenticated, service_role;
grant select on public.generation_jobs to authenticated;
grant insert (prompt, expanded_prompt, negative_prompt, style, variant, width, height, steps, true_cfg_scale,
              seed, init_image_path, franchise, client_request_id, metadata)
  on public.generation_jobs to authenticated;
grant select on public.generation_jobs to tenkaigen_worker;

create policy "users insert their own jobs" on public.generation_jobs
  for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "users read their own jobs" on public.generation_jobs
  for select to authenticated
  using (user_id = (select auth.uid()));

-- the worker reads (never writes) every job: `tenkaigen jobs`, `stats` and the queue metrics
create policy "workers read every job" on public.generation_jobs
  for select to tenkaigen_worker
  using (true);

-- ## Cancel (shared by the client RPC and the admin function queue.cancel_job)
create function queue.request_cancel(p_job_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  select j.status into v_status from public.generation_jobs j where j.id = p_job_id for update;
  if not found then
    return null;
  end if;
  if v_status = 'queued' then
    update public.generation_jobs
       set status = 'canceled', finished_at = now(), cancel_requested_at = now()
     where id = p_job_id;
    return 'canceled';
  elsif v_status = 'running' then
    update public.generation_jobs
       set cancel_requested_at = coalesce(cancel_requested_at, now())
     where id = p_job_id;
    perform pg_notify('generation_jobs_cancel', p_job_id::text);
    return 'cancel_requested';
  end if;
  return v_status;          -- already final: nothing to do
end;
$$;
comment on function queue.request_cancel(uuid) is
  'Cancel a job: queued -> canceled at once; running -> cancel_requested_at + NOTIFY generation_jobs_cancel '
  '(the worker stops it); final -> unchanged. Returns canceled | cancel_requested | the final status | null.';

create function public.cancel_generation_job(job_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_result text;
begin
  if not exists (select from public.generation_jobs j
                 where j.id = cancel_generation_job.job_id and j.user_id = (select auth.uid())) then
    raise exception using errcode = 'P0002', column = 'job_id',
      message = format('job_id: no job %s among your jobs', cancel_generation_job.job_id);
  end if;
  v_result := queue.request_cancel(cancel_generation_job.job_id);
  return v_result;
end;
$$;
comment on function public.cancel_generation_job(uuid) is
  'Client RPC: cancel one of your jobs. Returns canceled (was queued), cancel_requested (was running; the '
  'worker stops it) or the final status it already had.';

-- ## Queue position
-- The position your job will have when it becomes claimable, that is at greatest(now(), your run_after). A job
-- counts as ahead of yours when it is queued, will be claimable by then (its run_after <= that moment), and comes
-- first in the order of queue.claim_jobs (priority desc, run_after, created_at, id). So higher-priority jobs still
-- waiting out a retry backoff at that moment are not ahead of yours: queue.claim_jobs would not take them either.
create function public.generation_job_queue_position(job_id uuid)
returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select 1 + (
    select count(*)::integer from public.generation_jobs o
    where o.status = 'queued'
      and o.run_after <= greatest(now(), j.run_after)
      and (o.priority > j.priority
           or (o.priority = j.priority
               and (o.run_after, o.created_at, o.id) < (j.run_after, j.created_at, j.id))))
  from public.generation_jobs j
  where j.id = generation_job_queue_position.job_id
    and j.user_id = (select auth.uid())
    and j.status = 'queued'
$$;
comment on function public.generation_job_queue_position(uuid) is
  'Client RPC: 1-based position of your queued job in claim order (priority desc, run_after, created_at, id: '
  'the order of queue.claim_jobs) at the moment it becomes claimable; jobs still backing off then are not ahead '
  'of it. Null when it is not queued (or not yours).';

-- ## Privileges
-- client RPCs: authenticated only
revoke all on function public.cancel_generation_job(uuid), public.generation_job_queue_position(uuid)
  from public, anon, authenticated, service_role;
grant execute on function public.cancel_generation_job(uuid), public.generation_job_queue_position(uuid)
  to authenticated;
-- the shared cancel: security-definer callers only (schema queue's default privileges already exclude PUBLIC)
revoke execute on function queue.request_cancel(uuid) from public;
