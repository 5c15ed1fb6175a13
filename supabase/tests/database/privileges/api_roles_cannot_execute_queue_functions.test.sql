begin;
select plan(18);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset

-- TEST: no queue function is executable by PUBLIC or an API role, even if schema usage were granted later
select is_empty(
  $$select p.oid::regprocedure::text, r.role
    from pg_proc p cross join (values ('anon'), ('authenticated'), ('service_role')) as r(role)
    where p.pronamespace = 'queue'::regnamespace and has_function_privilege(r.role, p.oid, 'execute')$$,
  'no queue function is executable by anon, authenticated or service_role');
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    where p.pronamespace = 'queue'::regnamespace and a.grantee = 0 and a.privilege_type = 'EXECUTE'$$,
  'no queue function is executable by PUBLIC');

-- TEST: a signed-in client calling any queue function is refused with 42501
select tests.authenticate_as('alice');
select throws_ok(format($$select queue.renew_leases('worker-a', array[%L]::uuid[], array[1])$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot renew leases');
select throws_ok(format($$select queue.report_progress('worker-a', %L, 1, 0.5)$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot report progress');
select throws_ok(format($$select queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1}]')$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot complete jobs');
select throws_ok(format($$select queue.fail_job('worker-a', %L, 1, 'x', 'y', false)$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot fail a job');
select throws_ok(format($$select queue.acknowledge_cancel('worker-a', %L, 1)$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot acknowledge a cancel');
select throws_ok(format($$select queue.release_jobs('worker-a', array[%L]::uuid[], array[1])$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot release jobs');
select throws_ok($$select queue.reap_expired_leases()$$,
                 '42501', 'permission denied for schema queue', 'authenticated cannot reap leases');
select throws_ok(format($$select queue.requeue_job(%L)$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot requeue a job');
select throws_ok(format($$select queue.cancel_job(%L)$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot use the admin cancel');
select throws_ok(format($$select queue.request_cancel(%L)$$, :'job'),
                 '42501', 'permission denied for schema queue', 'authenticated cannot call request_cancel directly');
select throws_ok($$select queue.purge_finished_jobs()$$,
                 '42501', 'permission denied for schema queue', 'authenticated cannot purge jobs');
select throws_ok($$select queue.retry_delay(1)$$,
                 '42501', 'permission denied for schema queue', 'authenticated cannot call retry_delay');

-- TEST: an anonymous request is refused too
select tests.clear_authentication();
select throws_ok(format($$select queue.fail_job('worker-a', %L, 1, 'x', 'y', false)$$, :'job'),
                 '42501', 'permission denied for schema queue', 'anon cannot fail a job');
select throws_ok($$select queue.reap_expired_leases()$$,
                 '42501', 'permission denied for schema queue', 'anon cannot reap leases');
select throws_ok($$select queue.purge_finished_jobs()$$,
                 '42501', 'permission denied for schema queue', 'anon cannot purge jobs');

-- TEST: none of these attempts changed the job
reset role;
select results_eq(format($$select status, locked_by, attempts from public.generation_jobs where id = %L$$, :'job'),
                  $$values ('running'::text, 'worker-a'::text, 1)$$, 'the job is still running as before');

select * from finish();
rollback;
