-- Deployment-wide maintenance state the worker replicas share: the daily cost alert and the leader of the
-- queue-wide metrics. Both tables live in schema queue, where the API roles have no usage; they are still revoked
-- from them explicitly, and tenkaigen_worker gets no table privilege (the functions are security definer). Every
-- function: revoked from public and the API roles, execute to tenkaigen_worker.
--
-- ## The cost alert fires once per UTC day for the whole deployment, and is retried until its webhook takes it
-- (a per-process "last alert" time would send N alerts a day for N replicas, again after a restart, and never
-- retry a failed webhook). queue.cost_alerts holds one row per UTC day on which the last 24 h of generation cost
-- crossed the threshold: what was seen, when it fired, how many delivery attempts, delivered or the last error.
--   queue.record_cost_alert(threshold_usd, max_attempts, retry_after) -> (day, cost_usd, gpu_seconds, attempt):
--     reads the last 24 h of cost (the window of queue.job_stats) and returns one row when the caller must send
--     the alert now: the first caller of the day to see the cost above the threshold (INSERT … ON CONFLICT DO
--     NOTHING RETURNING: exactly one of any number of concurrent callers gets the row), or, while the alert is
--     not delivered and fewer than max_attempts were made, the first caller at least retry_after after the last
--     attempt (an UPDATE that re-checks its WHERE under the row lock, so again exactly one caller). No row: nothing
--     to send (below the threshold, delivered, attempts used up, or another replica is sending it now).
--   queue.finish_cost_alert(day, attempt, error) -> boolean: records the outcome of a delivery: error null marks
--     the day delivered (from any attempt; never sent again), an error is kept only for the latest attempt.

create table queue.cost_alerts (
  day date primary key,
  threshold_usd numeric not null constraint cost_alerts_threshold_positive check (threshold_usd > 0),
  cost_usd numeric not null constraint cost_alerts_cost_above_threshold check (cost_usd > threshold_usd),
  gpu_seconds numeric not null default 0 constraint cost_alerts_gpu_seconds_not_negative check (gpu_seconds >= 0),
  fired_at timestamptz not null default now(),
  attempts integer not null default 1 constraint cost_alerts_attempts_positive check (attempts >= 1),
  last_attempt_at timestamptz not null default now(),
  delivered_at timestamptz,
  last_error text constraint cost_alerts_last_error_bounded check (length(last_error) <= 1000),
  constraint cost_alerts_delivered_after_fired check (delivered_at is null or delivered_at >= fired_at)
);
comment on table queue.cost_alerts is
  'Cost alerts, one row per UTC day on which the last 24 h of generation cost crossed the threshold: what was '
  'seen, delivery attempts, delivered_at or last_error (queue.record_cost_alert, queue.finish_cost_alert).';
revoke all on table queue.cost_alerts from public, anon, authenticated, service_role;

-- ## record_cost_alert: must this caller send the alert now?
create function queue.record_cost_alert(threshold_usd numeric, max_attempts integer default 5,
                                        retry_after interval default interval '1 minute')
returns table (day date, cost_usd numeric, gpu_seconds numeric, attempt integer)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_day date := (now() at time zone 'UTC')::date;
  v_cost numeric;
  v_gpu_seconds numeric;
begin
  if record_cost_alert.threshold_usd is null or record_cost_alert.threshold_usd <= 0 then
    raise exception using errcode = '22023', message = format('threshold_usd: must be above 0, got %s',
      coalesce(record_cost_alert.threshold_usd::text, 'null'));
  end if;
  if record_cost_alert.max_attempts is null or record_cost_alert.max_attempts < 1 then
    raise exception using errcode = '22023', message = format('max_attempts: must be at least 1, got %s',
      coalesce(record_cost_alert.max_attempts::text, 'null'));
  end if;
  -- the window and sums of queue.job_stats: the live rows plus the runs a requeue cleared (queue.job_runs)
  select coalesce(sum(s.cost_usd), 0), coalesce(sum(s.gpu_seconds), 0) into v_cost, v_gpu_seconds
    from (select j.cost_usd, j.gpu_seconds from public.generation_jobs j
           where j.finished_at > now() - interval '24 hours'
          union all
          select r.cost_usd, r.gpu_seconds from queue.job_runs r
           where r.finished_at > now() - interval '24 hours') s;
  if v_cost <= record_cost_alert.threshold_usd then
    return;
  end if;
  -- the first crossing of the day: exactly one caller inserts the row and sends
  return query
    insert into queue.cost_alerts as a (day, threshold_usd, cost_usd, gpu_seconds)
    values (v_day, record_cost_alert.threshold_usd, v_cost, v_gpu_seconds)
    on conflict on constraint cost_alerts_pkey do nothing
    returning a.day, a.cost_usd, a.gpu_seconds, a.attempts;
  if found then
    return;
  end if;
  -- fired earlier today and not delivered: one caller retries, once retry_after has passed since the last try
  return query
    update queue.cost_alerts as a
       set attempts = a.attempts + 1, last_attempt_at = now(), cost_usd = greatest(a.cost_usd, v_cost),
           gpu_seconds = greatest(a.gpu_seconds, v_gpu_seconds)
     where a.day = v_day and a.delivered_at is null and a.attempts < record_cost_alert.max_attempts
       and a.last_attempt_at <= now() - record_cost_alert.retry_after
    returning a.day, a.cost_usd, a.gpu_seconds, a.attempts;
end;
$$;
comment on function queue.record_cost_alert(numeric, integer, interval) is
  'Cost alert, once per UTC day for the whole deployment: one row (day, cost_usd, gpu_seconds, attempt) when the '
  'caller must send it now (first crossing of the day, or a retry of an undelivered one after retry_after, up to '
  'max_attempts); no row otherwise. Report the outcome with queue.finish_cost_alert.';

-- ## finish_cost_alert: delivered, or why not
create function queue.finish_cost_alert(day date, attempt integer, error text default null)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with finished as (
    update queue.cost_alerts a
       set delivered_at = case when finish_cost_alert.error is null then now() end,
           last_error = case when finish_cost_alert.error is null then a.last_error
                             else left(finish_cost_alert.error, 1000) end
     where a.day = finish_cost_alert.day and a.delivered_at is null
       and (finish_cost_alert.error is null or a.attempts = finish_cost_alert.attempt)
    returning 1
  )
  select exists (select from finished)
$$;
comment on function queue.finish_cost_alert(date, integer, text) is
  'Record the outcome of a cost alert delivery: error null marks the day delivered (never sent again); an error '
  'is kept for the latest attempt (retried by queue.record_cost_alert). True if the row changed.';

-- ## Privileges: the worker role only
revoke all on function queue.record_cost_alert(numeric, integer, interval),
                       queue.finish_cost_alert(date, integer, text)
  from public, anon, authenticated, service_role;
grant execute on function queue.record_cost_alert(numeric, integer, interval),
                          queue.finish_cost_alert(date, integer, text)
  to tenkaigen_worker;

-- ## One worker at a time exports the queue-wide gauges: a leader lease in queue.maintenance_leader
-- (if every replica exported queued, running, claimable and oldest claimable age, a dashboard summing them over
-- instances would show N times the queue; the replica count must not change what a query over the queue returns).
--   queue.try_lead(worker_id, lease_seconds) -> boolean: take the lease if nobody holds it or it has expired,
--     or renew it if worker_id already holds it; true while worker_id leads. Concurrent callers serialise on the
--     row (INSERT … ON CONFLICT … DO UPDATE … WHERE), so at most one of them gets true for a lease window.
--   queue.resign_lead(worker_id) -> boolean: a stopping leader ends its lease now, so another replica takes
--     over at its next gauge run instead of after the lease.
-- The worker's gauge job calls try_lead before reading queue.job_stats and exports the queue gauges only while
-- it leads; the metric `tenkaigen_queue_metrics_leader` says which replica does.

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
