-- The private `queue` schema and the worker's database role.
--
-- `queue` holds the job-queue functions and admin tables. PostgREST does not expose it (it is not in
-- config.toml's `[api] schemas`) and the API roles get no usage on it: the queue functions are the worker's
-- API, not the clients'. The worker logs in as `tenkaigen_worker` (an admin gives it a password with
-- `alter role tenkaigen_worker login password '…'`); it needs no RLS bypass because it only calls these
-- security-definer functions. `postgres` also works.

create schema queue;
comment on schema queue is 'TenkaiGen job queue: worker API functions and admin tables. Not exposed to the Data API.';

do $$
begin
  -- roles are cluster-wide: a second database on the same server (tests, branches) already has it
  if not exists (select from pg_roles where rolname = 'tenkaigen_worker') then
    create role tenkaigen_worker nologin;
  end if;
end
$$;
comment on role tenkaigen_worker is 'TenkaiGen generation worker: calls queue.* functions only.';

revoke all on schema queue from public;
grant usage on schema queue to tenkaigen_worker;
-- functions created later in this schema must not be executable by PUBLIC (the PostgreSQL default)
alter default privileges in schema queue revoke execute on functions from public;
