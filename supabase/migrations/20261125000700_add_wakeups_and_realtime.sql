-- Wake-ups for workers (LISTEN/NOTIFY) and live updates for clients (Realtime Broadcast from the database).
--
-- NOTIFY is only a hint: workers also poll. `generation_jobs_queued` carries no payload, and a statement-level
-- trigger sends it once per insert statement (PostgreSQL also folds identical notifications within a
-- transaction). Cancels notify `generation_jobs_cancel` with the job id (queue.request_cancel).
--
-- Clients follow their jobs on the private Broadcast topic `generation_jobs:<user_id>` (contract), event
-- `job_update`, payload = public.generation_job_update(row): a projection without lease or worker internals.
-- It is sent when status, progress, result or cancel request changes, never on lease renewals. The trigger
-- function must be security definer: realtime.send swallows errors, so a client-caused insert into
-- realtime.messages that failed RLS would vanish with only a WARNING.

create function public.generation_jobs_notify_queued()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pg_notify('generation_jobs_queued', '');
  return null;
end;
$$;

create trigger generation_jobs_notify_queued
  after insert on public.generation_jobs
  for each statement execute function public.generation_jobs_notify_queued();

create function public.generation_job_update(j public.generation_jobs)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'job_id', j.id,
    'status', j.status,
    'progress', j.progress,
    'result_path', j.result_path,
    'error_code', j.error_code,
    'error_message', j.error_message,
    'attempts', j.attempts,
    'cancel_requested', j.cancel_requested_at is not null,
    'created_at', j.created_at,
    'started_at', j.started_at,
    'finished_at', j.finished_at,
    'updated_at', j.updated_at,
    'style', j.style,
    'variant', j.variant,
    'width', j.width,
    'height', j.height,
    'seed', j.seed,
    'client_request_id', j.client_request_id)
$$;
comment on function public.generation_job_update(public.generation_jobs) is
  'The public projection of a job sent on its owner''s Broadcast topic (no lease or worker internals).';

create function public.generation_jobs_broadcast()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform realtime.send(public.generation_job_update(new), 'job_update',
                        'generation_jobs:' || new.user_id::text, true);
  return null;
end;
$$;

create trigger generation_jobs_broadcast_insert
  after insert on public.generation_jobs
  for each row execute function public.generation_jobs_broadcast();

create trigger generation_jobs_broadcast_update
  after update on public.generation_jobs
  for each row
  when (old.status is distinct from new.status
        or old.progress is distinct from new.progress
        or old.result_path is distinct from new.result_path
        or old.cancel_requested_at is distinct from new.cancel_requested_at)
  execute function public.generation_jobs_broadcast();

create policy "users receive their own generation job updates" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and (select realtime.topic()) = 'generation_jobs:' || (select auth.uid())::text
  );

revoke execute on function public.generation_jobs_notify_queued() from public, anon, authenticated;
revoke execute on function public.generation_jobs_broadcast() from public, anon, authenticated;
