-- One worker at a time exports the queue-wide gauges: a leader lease in queue.maintenance_leader.
--
-- Why: every replica read queue.job_stats and exported the same queue-wide gauges (queued, running, claimable,
-- oldest claimable age), so a dashboard that summed them over instances showed N times the queue, and one that
-- did not had N identical series to pick from. Prometheus scrapes each replica; the replica count must not change
-- what a query over the queue returns.
--
-- What changes: a one-row table queue.maintenance_leader (who leads, since when, until when) and two functions
-- for the worker:
--   queue.try_lead(worker_id, lease_seconds) -> boolean: take the lease if nobody holds it or it has expired,
--     or renew it if worker_id already holds it; true while worker_id leads. Concurrent callers serialise on the
--     row (INSERT … ON CONFLICT … DO UPDATE … WHERE), so at most one of them gets true for a lease window.
--   queue.resign_lead(worker_id) -> boolean: a stopping leader ends its lease now, so another replica takes
--     over at its next gauge run instead of after the lease.
-- The worker's gauge job (worker/maintenance.py collect_queue_metrics) calls try_lead before reading
-- queue.job_stats and exports the queue gauges only while it leads; `tenkaigen_queue_metrics_leader` says which
-- replica does.
--
-- Privileges (the discipline of 20261125001700): the table lives in schema queue, where the API roles have no
-- usage; it is still revoked from them explicitly, and tenkaigen_worker gets no table privilege (the functions
-- are security definer). Both functions: revoke from public and the API roles, execute to tenkaigen_worker.

-- ## The lease
create table queue.maintenance_leader (
  singleton boolean primary key default true constraint maintenance_leader_is_one_row check (singleton),
  worker_id text not null constraint maintenance_leader_worker_id_not_blank check (length(worker_id) > 0),
  acquired_at timestamptz not null default now(),
  lease_expires_at timestamptz not null,
  constraint maintenance_leader_lease_after_acquired check (lease_expires_at >= acquired_at)
);
comment on table queue.maintenance_leader is
  'The worker that exports the queue-wide metrics (one row; queue.try_lead takes and renews it, '
  'queue.resign_lead ends it).';
revoke all on table queue.maintenance_leader from public, anon, authenticated, service_role;

-- ## try_lead: take, keep or be refused the lease
create function queue.try_lead(worker_id text, lease_seconds integer)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_led boolean;
begin
  if try_lead.worker_id is null or length(try_lead.worker_id) = 0 then
    raise exception using errcode = '22023', message = 'worker_id: give the id of the calling worker';
  end if;
  if try_lead.lease_seconds is null or try_lead.lease_seconds < 1 then
    raise exception using errcode = '22023',
      message = format('lease_seconds: must be at least 1, got %s', coalesce(try_lead.lease_seconds::text, 'null'));
  end if;
  insert into queue.maintenance_leader as l (singleton, worker_id, acquired_at, lease_expires_at)
  values (true, try_lead.worker_id, now(), now() + make_interval(secs => try_lead.lease_seconds))
  on conflict (singleton) do update
     set worker_id = excluded.worker_id,
         acquired_at = case when l.worker_id = excluded.worker_id then l.acquired_at else excluded.acquired_at end,
         lease_expires_at = excluded.lease_expires_at
   where l.worker_id = excluded.worker_id or l.lease_expires_at < now()
  returning true into v_led;
  return coalesce(v_led, false);
end;
$$;
comment on function queue.try_lead(text, integer) is
  'Take the queue-metrics leader lease for lease_seconds if it is free or expired, or renew it if worker_id '
  'holds it. True while worker_id leads; false when another worker holds an unexpired lease.';

-- ## resign_lead: a stopping leader hands over at once
create function queue.resign_lead(worker_id text)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with resigned as (
    update queue.maintenance_leader l
       set lease_expires_at = greatest(l.acquired_at, now() - interval '1 microsecond')
     where l.worker_id = resign_lead.worker_id and l.lease_expires_at >= now()
    returning 1
  )
  select exists (select from resigned)
$$;
comment on function queue.resign_lead(text) is
  'End the queue-metrics leader lease now if worker_id holds it (a stopping worker); true if it did.';

-- ## Privileges: the worker role only
revoke all on function queue.try_lead(text, integer), queue.resign_lead(text)
  from public, anon, authenticated, service_role;
grant execute on function queue.try_lead(text, integer), queue.resign_lead(text) to tenkaigen_worker;
