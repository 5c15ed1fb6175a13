-- Job broadcasts once per statement instead of once per row.
--
-- Why: the row-level triggers of 20261125000700 call realtime.send() for every changed row. realtime.send opens a
-- subtransaction (its exception block) and runs a dynamic `SET LOCAL`, and the payload function
-- public.generation_job_update() saves and restores its `search_path` setting on every call: together about
-- 150 µs per row on a small machine, most of what a claim or a completion costs. Workers claim and complete in
-- batches (queue.claim_jobs, queue.complete_jobs), so the per-row broadcast cost capped the queue's throughput
-- (see docs/performance.md).
--
-- What changes: statement-level triggers with transition tables insert every message of the statement with one
-- INSERT … SELECT into realtime.messages. What a client receives is unchanged: one `job_update` message per
-- changed job on the private topic `generation_jobs:<user_id>`, its payload the projection of
-- public.generation_job_update(row) plus the message `id` (exactly what realtime.send builds), sent on insert and
-- when status, progress, result_path or cancel_requested_at change, never on lease renewals. The projection is
-- written out in the trigger (a function call with a SET clause cannot be inlined); a test checks it stays equal
-- to public.generation_job_update, which remains the documented definition of the payload.
--
-- Like realtime.send, a failed broadcast never fails the job write: the insert runs in one subtransaction per
-- statement and an error becomes `WARNING: WarnSendingBroadcastMessage: …`. The functions stay security definer
-- (the owner, postgres, bypasses RLS on realtime.messages, so client-caused broadcasts are not lost);
-- realtime.topic is only a policy input, so realtime.send's per-message `SET LOCAL realtime.topic` is not needed.

-- ## Functions
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
  'Broadcast job_update for every inserted job, one INSERT per statement (see migration 20261125001000).';

create function public.generation_jobs_broadcast_updated()
returns trigger
language plpgsql
security definer
set search_path = ''
-- PL/pgSQL caches this statement's plan for the session. If the first statement it saw changed one row, the
-- transition tables were estimated at one row and the cached plan joins them with a nested loop, which is
-- quadratic for a 200-row batch (40,000 comparisons). Without nested loops the join is hashed at any size.
set enable_nestloop = off
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
  'statement (see migration 20261125001000).';

-- ## Triggers
drop trigger generation_jobs_broadcast_insert on public.generation_jobs;
drop trigger generation_jobs_broadcast_update on public.generation_jobs;

create trigger generation_jobs_broadcast_insert
  after insert on public.generation_jobs
  referencing new table as new_rows
  for each statement execute function public.generation_jobs_broadcast_inserted();

create trigger generation_jobs_broadcast_update
  after update on public.generation_jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.generation_jobs_broadcast_updated();

-- the row-level function is no longer used by any trigger
drop function public.generation_jobs_broadcast();

-- ## Grants
revoke execute on function public.generation_jobs_broadcast_inserted() from public, anon, authenticated;
revoke execute on function public.generation_jobs_broadcast_updated() from public, anon, authenticated;
