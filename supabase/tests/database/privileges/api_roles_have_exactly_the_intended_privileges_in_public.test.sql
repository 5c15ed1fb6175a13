begin;
select plan(12);

-- Every object the migrations create in schema public, and exactly what anon, authenticated and service_role may
-- do with it (supabase/migrations/*_styles_and_variants.sql, *_client_api.sql and the privileges discipline in
-- *_queue_schema_and_roles.sql). A new table, view, sequence or function in public
-- fails the first tests until it is listed here with its privileges (and revoked before granted: a project's
-- default privileges may grant everything; tests/migrations/test_old_default_privileges.py checks that case).

-- TEST: the objects in public
select tables_are('public', array['generation_jobs', 'generation_styles', 'generation_variants'],
                  'public has the three job tables and nothing else');
select is_empty($$select c.relname from pg_class c
                  where c.relnamespace = 'public'::regnamespace and c.relkind not in ('r', 'i')$$,
                'public has no view, sequence or other relation');
select functions_are('public', array['cancel_generation_job', 'generation_job_queue_position', 'generation_job_update',
                                     'generation_jobs_prepare_request', 'generation_jobs_guard_transition',
                                     'generation_jobs_enforce_quota', 'generation_jobs_notify_queued',
                                     'generation_jobs_broadcast_inserted', 'generation_jobs_broadcast_updated',
                                     'generation_styles_check_true_cfg_scale',
                                     'generation_variants_check_true_cfg_scale'],
                     'public has the client RPCs, the payload projection and the trigger functions');

-- TEST: table-level privileges, every privilege kind, for each API role
select results_eq(
  $$select c.relname::text collate "default", r.role, p.priv
    from pg_class c
    cross join (values ('anon'), ('authenticated'), ('service_role')) r(role)
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
    where c.relnamespace = 'public'::regnamespace and c.relkind not in ('i', 'S')
      and has_table_privilege(r.role, c.oid, p.priv)
    order by 1, 2, 3$$,
  $$values ('generation_jobs'::text, 'authenticated'::text, 'SELECT'::text),
           ('generation_styles', 'anon', 'SELECT'),
           ('generation_styles', 'authenticated', 'SELECT'),
           ('generation_styles', 'service_role', 'SELECT'),
           ('generation_variants', 'anon', 'SELECT'),
           ('generation_variants', 'authenticated', 'SELECT'),
           ('generation_variants', 'service_role', 'SELECT')$$,
  'table privileges: select on the catalogue for every API role, select on jobs for authenticated, nothing else');
select table_privs_are('public', 'generation_jobs', 'anon', array[]::text[], 'anon has no privilege on generation_jobs');
select table_privs_are('public', 'generation_jobs', 'service_role', array[]::text[],
                       'service_role has no privilege on generation_jobs');

-- TEST: column-level privileges beyond the table-level ones: insert of the request columns only
select results_eq(
  $$select c.relname::text collate "default", r.role, p.priv,
           array_agg(a.attname::text collate "default" order by a.attname)
    from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    cross join (values ('anon'), ('authenticated'), ('service_role')) r(role)
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p(priv)
    where c.relnamespace = 'public'::regnamespace and c.relkind not in ('i', 'S')
      and has_column_privilege(r.role, c.oid, a.attnum, p.priv) and not has_table_privilege(r.role, c.oid, p.priv)
    group by 1, 2, 3
    order by 1, 2, 3$$,
  $$values ('generation_jobs'::text, 'authenticated'::text, 'INSERT'::text,
            array['client_request_id', 'expanded_prompt', 'franchise', 'height', 'init_image_path', 'metadata',
                  'negative_prompt', 'prompt', 'seed', 'steps', 'style', 'true_cfg_scale', 'variant', 'width'])$$,
  'authenticated may insert the 14 request columns of generation_jobs and no other column');
select column_privs_are('public', 'generation_jobs', 'priority', 'authenticated', array['SELECT'],
                        'authenticated may read priority but not insert or update it');

-- TEST: function EXECUTE for each API role (PUBLIC's default grant counts)
select results_eq(
  $$select p.oid::regprocedure::text, r.role
    from pg_proc p cross join (values ('anon'), ('authenticated'), ('service_role')) r(role)
    where p.pronamespace = 'public'::regnamespace and has_function_privilege(r.role, p.oid, 'EXECUTE')
    order by 1, 2$$,
  $$values ('cancel_generation_job(uuid)'::text, 'authenticated'::text),
           ('generation_job_queue_position(uuid)', 'authenticated'),
           ('generation_job_update(generation_jobs)', 'anon'),
           ('generation_job_update(generation_jobs)', 'authenticated'),
           ('generation_job_update(generation_jobs)', 'service_role')$$,
  'the client RPCs are for authenticated only; no API role may call a trigger function');
select is_empty(
  $$select p.oid::regprocedure::text
    from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    where p.pronamespace = 'public'::regnamespace and a.grantee = 0 and a.privilege_type = 'EXECUTE'
      and p.oid <> 'public.generation_job_update(public.generation_jobs)'::regprocedure$$,
  'PUBLIC may execute only the payload projection generation_job_update');
select function_privs_are('public', 'cancel_generation_job', array['uuid'], 'anon', array[]::text[],
                          'anon cannot cancel a job');
select function_privs_are('public', 'generation_job_queue_position', array['uuid'], 'authenticated',
                          array['EXECUTE'], 'authenticated may ask for a queue position');

select * from finish();
rollback;
