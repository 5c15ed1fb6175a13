begin;
select plan(7);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select queue.request_cancel(:'job') as cancel_result \gset
select tests.make_job('alice', 'cancel requested before a requeue') as requeued \gset
select tests.job_snapshot(:'job') as job_before \gset
select tests.job_snapshot(:'requeued') as requeued_before \gset

-- TEST: another worker cannot acknowledge the cancel
select is(queue.acknowledge_cancel('worker-b', :'job', 2), false, 'a wrong locked_by answers false');
-- TEST: the holder of a previous attempt cannot acknowledge it either
select is(queue.acknowledge_cancel('worker-a', :'job', 1), false, 'a stale attempt answers false');
select is(tests.job_snapshot(:'job'), :'job_before'::jsonb, 'the job is unchanged, still running');

-- TEST: the right holder still can
select is(queue.acknowledge_cancel('worker-a', :'job', 2), true, 'the holder acknowledges');

-- TEST: a job no longer running is not acknowledged
select is(queue.acknowledge_cancel('worker-a', :'job', 2), false, 'a canceled job answers false');
select is(queue.acknowledge_cancel('worker-a', :'requeued', 0), false, 'a queued job answers false');
select is(tests.job_snapshot(:'requeued'), :'requeued_before'::jsonb, 'the queued job is unchanged');

select * from finish();
rollback;
