begin;
select plan(8);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select tests.make_job('alice', 'queued') as queued \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded \gset
select tests.job_snapshot(:'job') as job_before \gset
select tests.job_snapshot(:'queued') as queued_before \gset
select tests.job_snapshot(:'succeeded') as succeeded_before \gset

-- TEST: another worker cannot fail the job
select is(queue.fail_job('worker-b', :'job', 2, 'timeout', 'late', true), null, 'a wrong locked_by answers null');
-- TEST: the holder of a previous attempt cannot fail it either, retryable or not
select is(queue.fail_job('worker-a', :'job', 1, 'timeout', 'late', true), null,
          'a stale attempt answers null (retryable)');
select is(queue.fail_job('worker-a', :'job', 1, 'bad_request', 'late', false), null,
          'a stale attempt answers null (non-retryable)');
select is(tests.job_snapshot(:'job'), :'job_before'::jsonb, 'the running job is unchanged');

-- TEST: a job that is no longer running cannot be failed
select is(queue.fail_job('worker-a', :'queued', 0, 'timeout', 'late', false), null, 'a queued job answers null');
select is(tests.job_snapshot(:'queued'), :'queued_before'::jsonb, 'the queued job is unchanged');
select is(queue.fail_job('worker-a', :'succeeded', 1, 'timeout', 'late', false), null,
          'a succeeded job answers null');
select is(tests.job_snapshot(:'succeeded'), :'succeeded_before'::jsonb, 'the succeeded job is unchanged');

select * from finish();
rollback;
