-- The cost alert fires once per UTC day for the whole deployment, and is retried until its webhook takes it.
--
-- Why: each worker process kept its own "last alert" time in memory (worker/maintenance.py CostAlert), so N
-- replicas sent N alerts a day, a restart sent it again, and a webhook that failed was never retried.
--
-- What changes: a table queue.cost_alerts (one row per UTC day on which the last 24 h of generation cost crossed
-- the threshold: what was seen, when it fired, how many delivery attempts, delivered or the last error) and two
-- functions for the worker:
--   queue.record_cost_alert(threshold_usd, max_attempts, retry_after) -> (day, cost_usd, gpu_seconds, attempt):
--     reads the last 24 h of cost (the window of queue.job_stats) and returns one row when the caller must send
--     the alert now: the first caller of the day to see the cost above the threshold (INSERT … ON CONFLICT DO
--     NOTHING RETURNING: exactly one of any number of concurrent callers gets the row), or, while the alert is
--     not delivered and fewer than max_attempts were made, the first caller at least retry_after after the last
--     attempt (an UPDATE that re-checks its WHERE under the row lock, so again exactly one caller). No row: nothing
--     to send (below the threshold, delivered, attempts used up, or another replica is sending it now).
--   queue.finish_cost_alert(day, attempt, error) -> boolean: records the outcome of a delivery: error null marks
--     the day delivered (from any attempt; never sent again), an error is kept only for the latest attempt.
--
-- Privileges (the discipline of 20261125001700): the table lives in schema queue, where the API roles have no
-- usage; it is still revoked from them explicitly, and tenkaigen_worker gets no table privilege (the functions
-- are security definer). Both functions: revoke from public and the API roles, execute to tenkaigen_worker.

-- ## One row per UTC day on which the alert fired
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
  -- the window of queue.job_stats: one range of generation_jobs_finished_at_idx
  select coalesce(sum(j.cost_usd), 0), coalesce(sum(j.gpu_seconds), 0) into v_cost, v_gpu_seconds
    from public.generation_jobs j
   where j.finished_at > now() - interval '24 hours';
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
