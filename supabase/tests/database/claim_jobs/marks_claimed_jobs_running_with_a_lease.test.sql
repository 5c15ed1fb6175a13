begin;
select plan(10);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'to claim') as job \gset
-- a retried job: one attempt already counted, some progress and an error left from it
update public.generation_jobs set attempts = 1, progress = 0.4, error_code = 'transient' where id = :'job';

create temp table claimed on commit drop as select * from queue.claim_jobs('worker-a', 1, 30);

-- TEST: the function returns the claimed row as it now is
select results_eq($$select id, status from claimed$$, format('values (%L::uuid, %L::text)', :'job', 'running'),
                  'claim_jobs returns the claimed row, running');
select is((select to_jsonb(c) from claimed c), tests.job_snapshot(:'job'),
          'the returned row equals the stored row');

-- TEST: the stored row is running, leased to the worker, with attempts + 1
select is((select status from public.generation_jobs where id = :'job'), 'running', 'status is running');
select is((select attempts from public.generation_jobs where id = :'job'), 2, 'attempts went from 1 to 2');
select is((select locked_by from public.generation_jobs where id = :'job'), 'worker-a', 'locked_by is the worker');
select is((select lease_expires_at from public.generation_jobs where id = :'job'), now() + interval '30 seconds',
          'lease_expires_at = now() + lease_seconds');
select is((select started_at from public.generation_jobs where id = :'job'), now(), 'started_at = now()');
select is((select progress from public.generation_jobs where id = :'job'), 0::real,
          'progress restarts at 0 for the new attempt');
select is((select finished_at from public.generation_jobs where id = :'job'), null, 'finished_at stays null');

-- TEST: the default lease is 60 seconds
select tests.make_job('alice', 'default lease') as job2 \gset
select is((select lease_expires_at from queue.claim_jobs('worker-b', 1)), now() + interval '60 seconds',
          'lease_seconds defaults to 60');

select * from finish();
rollback;
