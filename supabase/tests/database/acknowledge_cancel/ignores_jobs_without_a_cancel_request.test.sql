begin;
select plan(2);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset
select tests.job_snapshot(:'job') as job_before \gset

-- TEST: a worker cannot cancel a job nobody asked to cancel
select is(queue.acknowledge_cancel('worker-a', :'job', 1), false, 'acknowledge_cancel answers false');
select is(tests.job_snapshot(:'job'), :'job_before'::jsonb, 'the job is unchanged, still running');

select * from finish();
rollback;
