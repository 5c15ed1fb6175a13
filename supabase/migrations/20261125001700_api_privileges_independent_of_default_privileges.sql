-- The Data API roles get exactly the privileges these migrations grant, whatever the project's default privileges.
--
-- Why: the migrations only ever granted (20261125000200: select on styles and variants; 20261125000500: select
-- and a column-level insert of the request columns on generation_jobs, execute on the two client RPCs). That is
-- the whole story only on a project without automatic grants (the Supabase default since 2026-05-30, and the
-- stand-in). A project created before then, or with `auto_expose_new_tables` on, has
--   alter default privileges in schema public grant all on tables    to anon, authenticated, service_role;
--   alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
--   alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
-- so every table created here also got a table-level INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES and TRIGGER for
-- anon and authenticated. A table-level INSERT covers every column, so the column-level grant restricted nothing:
-- a signed-in client could insert status, priority, max_attempts, created_at (back-dating defeats the hourly quota
-- of 20261125000400), lora… And TRUNCATE is not subject to row-level security: any client could empty the queue.
--
-- What changes: every table-level privilege on the tables these migrations created in public (generation_jobs,
-- generation_styles, generation_variants; they created no view or sequence there) is revoked from anon,
-- authenticated and service_role (which also revokes their column-level privileges), then exactly the intended
-- ones are granted again, as 20261125000200 and 20261125000500 wrote them:
--   generation_variants, generation_styles: select to anon, authenticated, service_role (row-level security shows
--     enabled rows only to the API roles);
--   generation_jobs: select, and insert of the 14 request columns only, to authenticated; nothing to anon or
--     service_role.
-- Every function these migrations created in public loses the EXECUTE the defaults gave anon, authenticated and
-- service_role: the client RPCs cancel_generation_job and generation_job_queue_position stay executable by
-- authenticated only; the trigger functions by nobody but their owner; public.generation_job_update (the documented
-- Broadcast payload, a pure projection of a row its caller passes in) keeps the EXECUTE that PUBLIC has by
-- PostgreSQL's default, as the migrations always left it.
-- service_role bypasses row-level security and is trusted, but nothing here uses it on these tables (the worker
-- connects as tenkaigen_worker or postgres and uses the service key for Storage only), so it gets what it gets on
-- a project without automatic grants. The privileges are now the same on every project; a project that wants the
-- service key to manage jobs through the Data API grants that in a migration of its own.
-- tenkaigen_worker's grants are untouched (no default privileges give it anything), and so is everything these
-- migrations did not create: the project's other tables in public and its default privileges are its own.
--
-- For every future migration: a new table, view, sequence or function in schema public must first
-- `revoke all on … from anon, authenticated, service_role` (functions: `from public, anon, authenticated,
-- service_role`), then grant exactly what it means to, because the project's default privileges may already have
-- granted everything. Schema queue is not affected (no default privileges there, no usage for the API roles).
-- supabase/tests/database/privileges/api_roles_have_exactly_the_intended_privileges_in_public.test.sql lists every
-- object in public and its privileges, so a new one fails that test until it is added there; tests/migrations/
-- test_old_default_privileges.py applies the migrations under the old defaults and checks the same privileges.

-- ## Tables
revoke all on table public.generation_jobs, public.generation_styles, public.generation_variants
  from anon, authenticated, service_role;

grant select on public.generation_variants, public.generation_styles to anon, authenticated, service_role;
grant select on public.generation_jobs to authenticated;
grant insert (prompt, expanded_prompt, negative_prompt, style, variant, width, height, steps, true_cfg_scale,
              seed, init_image_path, franchise, client_request_id, metadata)
  on public.generation_jobs to authenticated;

-- ## Functions
-- client RPCs: authenticated only
revoke all on function public.cancel_generation_job(uuid), public.generation_job_queue_position(uuid)
  from public, anon, authenticated, service_role;
grant execute on function public.cancel_generation_job(uuid), public.generation_job_queue_position(uuid)
  to authenticated;

-- trigger functions: nobody calls them directly
revoke all on function
  public.generation_jobs_prepare_request(),
  public.generation_jobs_guard_transition(),
  public.generation_jobs_enforce_quota(),
  public.generation_jobs_notify_queued(),
  public.generation_jobs_broadcast_inserted(),
  public.generation_jobs_broadcast_updated()
  from public, anon, authenticated, service_role;

-- the Broadcast payload projection: PUBLIC keeps its default EXECUTE, the explicit grants of the defaults go
revoke all on function public.generation_job_update(public.generation_jobs) from anon, authenticated, service_role;
