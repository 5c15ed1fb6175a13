begin;
select plan(8);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select tests.make_finished_job('alice', 'failed') as finished \gset
select tests.make_job('alice', 'queued') as queued \gset
select tests.job_snapshot(:'job') as job_before \gset
select tests.job_snapshot(:'finished') as finished_before \gset
select tests.job_snapshot(:'queued') as queued_before \gset

-- TEST: another worker's report is refused and changes nothing
select is(queue.report_progress('worker-b', :'job', 2, 0.9), false, 'a wrong locked_by answers false');
-- TEST: a report from the previous attempt (the job was reclaimed since) is refused
select is(queue.report_progress('worker-a', :'job', 1, 0.9), false, 'a stale attempt answers false');
select is(tests.job_snapshot(:'job'), :'job_before'::jsonb, 'the running job is unchanged');

-- TEST: jobs that are no longer running take no progress
select is(queue.report_progress('worker-a', :'finished', 1, 0.9), false, 'a failed job answers false');
select is(tests.job_snapshot(:'finished'), :'finished_before'::jsonb, 'the failed job is unchanged');
select is(queue.report_progress('worker-a', :'queued', 0, 0.9), false, 'a queued job answers false');
select is(tests.job_snapshot(:'queued'), :'queued_before'::jsonb, 'the queued job is unchanged');

-- TEST: an unknown job answers false
select is(queue.report_progress('worker-a', gen_random_uuid(), 1, 0.9), false, 'an unknown job answers false');

select * from finish();
rollback;
