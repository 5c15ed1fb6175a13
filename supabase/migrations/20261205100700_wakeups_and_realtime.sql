-- Wake-ups for workers (LISTEN/NOTIFY) and live updates for clients (Realtime Broadcast from the database).
--
-- NOTIFY is only a hint: workers also poll. `generation_jobs_queued` carries no payload, and a statement-level
-- trigger sends it once per insert statement (PostgreSQL also folds identical notifications within a
-- transaction). Cancels notify `generation_jobs_cancel` with the job id (queue.request_cancel).
--
-- Clients follow their jobs on the private Broadcast topic `generation_jobs:<user_id>` (contract), event
-- `job_update`, one message per changed job, its payload the projection public.generation_job_update(row) plus
-- the message `id` (exactly what realtime.send builds): a projection without lease or worker internals. It is
-- sent on insert and when status, progress, result_path or cancel_requested_at change, never on lease renewals.
--
-- The messages are written once per statement, not once per row: realtime.send() opens a subtransaction and runs
-- a dynamic `SET LOCAL`, and a function with a SET clause saves and restores its setting on every call: together
-- about 150 µs per row, most of what a claim or a completion costs when workers claim and complete in batches
-- (docs/performance.md). So statement-level triggers with transition tables insert every message of the
-- statement with one INSERT … SELECT into realtime.messages. The projection is written out in the triggers (a
-- function call with a SET clause cannot be inlined); a test checks it stays equal to
-- public.generation_job_update, which remains the documented definition of the payload.
--
-- Like realtime.send, a failed broadcast never fails the job write: the insert runs in one subtransaction per
-- statement and an error becomes `WARNING: WarnSendingBroadcastMessage: …`. The functions are security definer:
-- the owner, postgres, bypasses RLS on realtime.messages, so a client-caused broadcast is not lost to RLS.
-- realtime.topic is only a policy input, so realtime.send's per-message `SET LOCAL realtime.topic` is not needed.

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

-- ## Broadcast triggers
create function public.generation_jobs_broadcast_inserted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  begin
    insert into realtime.messages (id, payload, event, topic, private, extension)
    select m.id, m.payload || jsonb_build_object('id', m.id), 'job_update', m.topic, true, 'broadcast'
    from (select gen_random_uuid() as id,            -- volatile: the subquery is not flattened, one id a row
                 jsonb_build_object(                 -- = public.generation_job_update(n)
                   'job_id', n.id, 'status', n.status, 'progress', n.progress, 'result_path', n.result_path,
                   'error_code', n.error_code, 'error_message', n.error_message, 'attempts', n.attempts,
                   'cancel_requested', n.cancel_requested_at is not null, 'created_at', n.created_at,
                   'started_at', n.started_at, 'finished_at', n.finished_at, 'updated_at', n.updated_at,
                   'style', n.style, 'variant', n.variant, 'width', n.width, 'height', n.height, 'seed', n.seed,
                   'client_request_id', n.client_request_id) as payload,
                 'generation_jobs:' || n.user_id::text as topic
          from new_rows n) as m;
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
  return null;
end;
$$;
comment on function public.generation_jobs_broadcast_inserted() is
  'Broadcast job_update for every inserted job, one INSERT per statement.';

create function public.generation_jobs_broadcast_updated()
returns trigger
language plpgsql
security definer
set search_path = ''
-- PL/pgSQL caches this statement's plan for the session. If the first statement it saw changed one row, the
-- transition tables were estimated at one row and the cached plan joins them with a nested loop, which is
-- quadratic for a 200-row batch (40,000 comparisons). Without nested loops the join is hashed at any size. The
-- function's settings stay in force for whatever its statement runs, and a caller's settings would otherwise
-- reach it (queue.claim_jobs disables hash and merge joins), so it pins every join setting it depends on.
set enable_nestloop = off
set enable_hashjoin = on
set enable_mergejoin = on
as $$
begin
  begin
    insert into realtime.messages (id, payload, event, topic, private, extension)
    select m.id, m.payload || jsonb_build_object('id', m.id), 'job_update', m.topic, true, 'broadcast'
    from (select gen_random_uuid() as id,            -- volatile: the subquery is not flattened, one id a row
                 jsonb_build_object(                 -- = public.generation_job_update(n)
                   'job_id', n.id, 'status', n.status, 'progress', n.progress, 'result_path', n.result_path,
                   'error_code', n.error_code, 'error_message', n.error_message, 'attempts', n.attempts,
                   'cancel_requested', n.cancel_requested_at is not null, 'created_at', n.created_at,
                   'started_at', n.started_at, 'finished_at', n.finished_at, 'updated_at', n.updated_at,
                   'style', n.style, 'variant', n.variant, 'width', n.width, 'height', n.height, 'seed', n.seed,
                   'client_request_id', n.client_request_id) as payload,
                 'generation_jobs:' || n.user_id::text as topic
          from new_rows n
          join old_rows o on o.id = n.id
          where o.status is distinct from n.status
             or o.progress is distinct from n.progress
             or o.result_path is distinct from n.result_path
             or o.cancel_requested_at is distinct from n.cancel_requested_at) as m;
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
  return null;
end;
$$;
comment on function public.generation_jobs_broadcast_updated() is
  'Broadcast job_update for every job whose status, progress, result or cancel request changed, one INSERT per '
  'statement.';

create trigger generation_jobs_broadcast_insert
  after insert on public.generation_jobs
  referencing new table as new_rows
  for each statement execute function public.generation_jobs_broadcast_inserted();

create trigger generation_jobs_broadcast_update
  after update on public.generation_jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.generation_jobs_broadcast_updated();

create policy "users receive their own generation job updates" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and (select realtime.topic()) = 'generation_jobs:' || (select auth.uid())::text
  );

-- ## Privileges
-- trigger functions: nobody calls them directly
revoke all on function
  public.generation_jobs_notify_queued(),
  public.generation_jobs_broadcast_inserted(),
  public.generation_jobs_broadcast_updated()
  from public, anon, authenticated, service_role;
-- the Broadcast payload projection: PUBLIC keeps its default EXECUTE (a pure projection of a row its caller
-- passes in); explicit grants a project's default privileges may have given the API roles go
revoke all on function public.generation_job_update(public.generation_jobs) from anon, authenticated, service_role;
