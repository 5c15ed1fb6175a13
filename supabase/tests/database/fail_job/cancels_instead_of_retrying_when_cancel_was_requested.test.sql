-- Regression (open bug): every other way a running job leaves its worker honours a pending cancel request
-- (release_jobs and reap_expired_leases end it canceled), but fail_job with retryable = true puts a job whose
-- cancel was requested back in the queue, cancel_requested_at still set. It is then claimed and run again
-- (one more attempt, one more GPU call) although its owner canceled it.
begin;
select plan(5);

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

select * from finish();
rollback;
