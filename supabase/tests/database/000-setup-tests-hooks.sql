-- Test helpers in schema `tests`, used by every pgTAP file (they sort after this one). Written for this project
-- in the style of basejump's supabase_test_helpers; committed (not rolled back) so later files can call them,
-- exactly as `supabase test db` runs files one after another. Never part of the migrations.
begin;
create extension if not exists pgtap with schema extensions;
select plan(1);

create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

-- A signed-up user (what GoTrue writes), found again by its identifier.
create or replace function tests.create_supabase_user(identifier text, email text default null)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid := gen_random_uuid();
begin
  insert into auth.users (id, email, aud, role, raw_app_meta_data, raw_user_meta_data)
  values (v_id, coalesce(email, identifier || '@example.test'), 'authenticated', 'authenticated',
          '{}'::jsonb, jsonb_build_object('test_identifier', identifier));
  return v_id;
end;
$$;

create or replace function tests.get_supabase_uid(identifier text)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.id from auth.users u where u.raw_user_meta_data ->> 'test_identifier' = identifier
$$;

-- Become that user for the rest of the transaction, as PostgREST does: role + JWT claims.
create or replace function tests.authenticate_as(identifier text)
returns void
language plpgsql
as $$
declare
  v_id uuid := tests.get_supabase_uid(identifier);
begin
  if v_id is null then
    raise exception 'tests.authenticate_as: no test user %', identifier;
  end if;
  perform set_config('role', 'authenticated', true);
  perform set_config('request.jwt.claims',
                     jsonb_build_object('sub', v_id, 'role', 'authenticated', 'aud', 'authenticated')::text, true);
end;
$$;

-- An anonymous request (role anon, no sub).
create or replace function tests.clear_authentication()
returns void
language plpgsql
as $$
begin
  perform set_config('role', 'anon', true);
  perform set_config('request.jwt.claims', '{"role":"anon"}', true);
end;
$$;

-- A queued job for a user, inserted as an admin (not rate limited). Returns its id.
create or replace function tests.make_job(identifier text, prompt text default 'a test design',
                                          priority smallint default 0,
                                          run_after timestamptz default now())
returns uuid
language sql
security definer
set search_path = ''
as $$
  insert into public.generation_jobs (user_id, prompt, priority, run_after, width, height)
  values (tests.get_supabase_uid(identifier), make_job.prompt, make_job.priority, make_job.run_after, 512, 512)
  returning id
$$;

-- A job as if worker `worker_id` had claimed it (attempt 1 unless given), with a lease of lease_seconds
-- (negative = already expired).
create or replace function tests.make_running_job(identifier text, worker_id text default 'worker-a',
                                                  lease_seconds integer default 60, attempt integer default 1)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid := tests.make_job(identifier);
begin
  update public.generation_jobs
     set status = 'running', attempts = attempt, claims = attempt, locked_by = worker_id, started_at = now(),
         lease_expires_at = now() + make_interval(secs => lease_seconds)
   where id = v_id;
  return v_id;
end;
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

select ok(to_regprocedure('tests.authenticate_as(text)') is not null, 'test helpers are installed');
select * from finish();
commit;
