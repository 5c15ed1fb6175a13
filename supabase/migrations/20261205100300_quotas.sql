-- Per-user quotas on generation jobs: active jobs (queued + running) and jobs created per hour.
--
-- Limits live in queue.quota_limits so admins change them with SQL: the row with user_id null is the default,
-- a row per user overrides it. The check runs in a BEFORE INSERT trigger for inserts made through the Data API
-- (roles anon/authenticated); admin and service inserts are not limited. It takes a per-user transaction-level
-- advisory lock first, so concurrent inserts by one user are serialised and cannot both slip under the limit.
-- A refused insert raises SQLSTATE PT429 (PostgREST answers HTTP 429) with a message starting `rate_limited:`.

create table queue.quota_limits (
  id bigint generated always as identity primary key,
  user_id uuid references auth.users (id) on delete cascade,
  max_active_jobs integer not null,
  max_jobs_per_hour integer not null,
  note text,
  updated_at timestamptz not null default now(),
  constraint one_limit_row_per_user unique nulls not distinct (user_id),
  constraint max_active_jobs_not_negative check (max_active_jobs >= 0),
  constraint max_jobs_per_hour_not_negative check (max_jobs_per_hour >= 0)
);
comment on table queue.quota_limits is
  'Per-user job quotas. user_id null = the default for everyone; a row per user overrides it.';

insert into queue.quota_limits (user_id, max_active_jobs, max_jobs_per_hour, note)
values (null, 3, 30, 'default for every user');
revoke all on table queue.quota_limits from public, anon, authenticated, service_role;

create function public.generation_jobs_enforce_quota()
returns trigger
language plpgsql
security definer          -- clients cannot read queue.quota_limits or other users' rows
set search_path = ''
as $$
declare
  v_limits queue.quota_limits;
  v_active integer;
  v_last_hour integer;
begin
  if current_setting('role', true) not in ('anon', 'authenticated') then
    return new;           -- admin, worker and service inserts are not rate limited
  end if;
  -- serialise this user's inserts until commit
  perform pg_advisory_xact_lock(hashtextextended('generation_jobs_quota:' || new.user_id::text, 0));
  -- a repeated client_request_id is answered by the unique index (23505), not by the quota
  if new.client_request_id is not null and exists (
       select from public.generation_jobs j
       where j.user_id = new.user_id and j.client_request_id = new.client_request_id) then
    return new;
  end if;

  select * into v_limits from queue.quota_limits q
  where q.user_id = new.user_id or q.user_id is null
  order by q.user_id nulls last
  limit 1;
  if not found then
    return new;
  end if;

  select count(*) into v_active from public.generation_jobs j
  where j.user_id = new.user_id and j.status in ('queued', 'running');
  if v_active >= v_limits.max_active_jobs then
    raise exception using errcode = 'PT429',
      message = format('rate_limited: at most %s active jobs per user (you have %s)', v_limits.max_active_jobs, v_active),
      hint = 'Wait for a job to finish or cancel one, then try again.';
  end if;

  select count(*) into v_last_hour from public.generation_jobs j
  where j.user_id = new.user_id and j.created_at > now() - interval '1 hour';
  if v_last_hour >= v_limits.max_jobs_per_hour then
    raise exception using errcode = 'PT429',
      message = format('rate_limited: at most %s jobs per hour per user', v_limits.max_jobs_per_hour),
      hint = 'Try again later.';
  end if;
  return new;
end;
$$;

-- fires after generation_jobs_prepare_request (BEFORE triggers run in name order): bad input is reported first
create trigger generation_jobs_quota
  before insert on public.generation_jobs
  for each row execute function public.generation_jobs_enforce_quota();

-- a trigger function: nobody calls it directly
revoke all on function public.generation_jobs_enforce_quota() from public, anon, authenticated, service_role;
