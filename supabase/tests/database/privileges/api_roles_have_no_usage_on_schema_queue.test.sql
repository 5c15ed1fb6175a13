begin;
select plan(10);

select tests.create_supabase_user('alice') as alice \gset

-- TEST: only the worker role may use schema queue; the Data API roles may not
select schema_privs_are('queue', 'anon', array[]::text[], 'anon has no privilege on schema queue');
select schema_privs_are('queue', 'authenticated', array[]::text[], 'authenticated has no privilege on schema queue');
select schema_privs_are('queue', 'service_role', array[]::text[], 'service_role has no privilege on schema queue');
select schema_privs_are('queue', 'tenkaigen_worker', array['USAGE'], 'tenkaigen_worker has USAGE on schema queue');
select ok(not has_schema_privilege('public', 'queue', 'usage'), 'PUBLIC has no usage on schema queue');

-- TEST: a signed-in client cannot reach anything in queue
select tests.authenticate_as('alice');
select throws_ok($$select * from queue.claim_jobs('worker-x', 1)$$, '42501', 'permission denied for schema queue',
                 'authenticated cannot claim jobs');
select throws_ok($$select * from queue.job_stats$$, '42501', 'permission denied for schema queue',
                 'authenticated cannot read job_stats');
select throws_ok($$select * from queue.quota_limits$$, '42501', 'permission denied for schema queue',
                 'authenticated cannot read quota_limits');

-- TEST: neither can an anonymous request
select tests.clear_authentication();
select throws_ok($$select * from queue.claim_jobs('worker-x', 1)$$, '42501', 'permission denied for schema queue',
                 'anon cannot claim jobs');
select throws_ok($$select * from queue.job_stats$$, '42501', 'permission denied for schema queue',
                 'anon cannot read job_stats');

select * from finish();
rollback;
