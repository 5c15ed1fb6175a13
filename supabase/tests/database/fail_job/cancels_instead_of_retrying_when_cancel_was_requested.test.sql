-- Regression (found by this test, fixed in bebcd76): fail_job with retryable = true used to put a job whose
-- cancel was requested back in the queue, cancel_requested_at still set, to be claimed and run again although
-- its owner canceled it. Like release_jobs and reap_expired_leases, fail_job now lets a requested cancel win.
begin;
select plan(7);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset
select queue.request_cancel(:'job') as cancel_result \gset

-- TEST: a retryable failure of a job whose cancel was requested ends it canceled, not queued
select is(queue.fail_job('worker-a', :'job', 1, 'backend_unavailable', 'interrupted', true), 'canceled',
          'fail_job answers canceled');
select is((select status from public.generation_jobs where id = :'job'), 'canceled', 'the job is canceled');
select isnt((select finished_at from public.generation_jobs where id = :'job'), null, 'the job is finished');
select is((select locked_by from public.generation_jobs where id = :'job'), null, 'the lease is cleared');

-- TEST: so it is never claimed again
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'the canceled job is not claimed again');

-- TEST: a non-retryable failure of a job whose cancel was requested ends canceled too: the cancel wins
select tests.make_running_job('alice', 'worker-a', 60, 1) as job2 \gset
select queue.request_cancel(:'job2') as cancel_result2 \gset
select is(queue.fail_job('worker-a', :'job2', 1, 'bad_request', 'refused', false), 'canceled',
          'a non-retryable failure after a cancel request answers canceled');
select is((select status from public.generation_jobs where id = :'job2'), 'canceled', 'that job is canceled');

select * from finish();
rollback;
