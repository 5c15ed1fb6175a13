-- What a signed-in client may do with generation jobs: insert its own rows (request columns only), read its
-- own rows, cancel its own jobs and ask for a queued job's position. `anon` gets nothing here (it reads styles).

alter table public.generation_jobs enable row level security;

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
      and (o.priority > j.priority
           or (o.priority = j.priority
               and (o.run_after, o.created_at, o.id) < (j.run_after, j.created_at, j.id))))
  from public.generation_jobs j
  where j.id = generation_job_queue_position.job_id
    and j.user_id = (select auth.uid())
    and j.status = 'queued'
$$;
comment on function public.generation_job_queue_position(uuid) is
  'Client RPC: 1-based position of your queued job in claim order; null when it is not queued (or not yours).';

revoke execute on function public.cancel_generation_job(uuid) from public, anon;
revoke execute on function public.generation_job_queue_position(uuid) from public, anon;
grant execute on function public.cancel_generation_job(uuid) to authenticated;
grant execute on function public.generation_job_queue_position(uuid) to authenticated;
revoke execute on function public.generation_jobs_prepare_request() from public, anon, authenticated;
revoke execute on function public.generation_jobs_enforce_quota() from public, anon, authenticated;
revoke execute on function public.generation_jobs_guard_transition() from public, anon, authenticated;
revoke execute on function queue.request_cancel(uuid) from public;
