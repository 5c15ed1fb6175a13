begin;
select plan(7);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select tests.make_job('alice', 'queued') as queued \gset
select tests.make_finished_job('alice', 'failed') as failed \gset
select tests.job_snapshot(:'job') as job_before \gset
select tests.job_snapshot(:'queued') as queued_before \gset
select tests.job_snapshot(:'failed') as failed_before \gset

-- TEST: another worker cannot release the job
select is(queue.release_jobs('worker-b', array[:'job']::uuid[], array[2]), 0, 'a wrong locked_by releases 0');
-- TEST: the holder of a previous attempt cannot release it either
select is(queue.release_jobs('worker-a', array[:'job']::uuid[], array[1]), 0, 'a stale attempt releases 0');
select is(tests.job_snapshot(:'job'), :'job_before'::jsonb, 'the running job is unchanged');

-- TEST: jobs that are not running are not touched (a queued one would otherwise lose an attempt)
select is(queue.release_jobs('worker-a', array[:'queued', :'failed']::uuid[], array[0, 1]), 0,
          'queued and failed jobs release 0');
select is(tests.job_snapshot(:'queued'), :'queued_before'::jsonb, 'the queued job is unchanged');
select is(tests.job_snapshot(:'failed'), :'failed_before'::jsonb, 'the failed job is unchanged');

-- TEST: in a mixed list only the held job is released
select is(queue.release_jobs('worker-a', array[:'job', :'queued']::uuid[], array[2, 0]), 1,
          'only the held job of the list is released');

select * from finish();
rollback;
