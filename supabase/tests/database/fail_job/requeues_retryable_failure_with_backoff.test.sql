begin;
select plan(14);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as first_try \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as second_try \gset
select tests.make_running_job('alice', 'worker-a', 60, 3) as third_try \gset
update public.generation_jobs set max_attempts = 5 where id = :'third_try';
select queue.report_progress('worker-a', :'first_try', 1, 0.6) as reported \gset

-- TEST: a retryable failure with attempts left goes back to the queue
select is(queue.fail_job('worker-a', :'first_try', 1, 'backend_unavailable', 'Modal returned 503', true), 'queued',
          'fail_job answers queued');
select results_eq(
  format($$select status, attempts, locked_by, lease_expires_at, finished_at, progress
           from public.generation_jobs where id = %L$$, :'first_try'),
  $$values ('queued'::text, 1, null::text, null::timestamptz, null::timestamptz, 0::real)$$,
  'queued, attempt still counted, lease cleared, not finished, progress reset');
select results_eq(
  format($$select error_code, error_message from public.generation_jobs where id = %L$$, :'first_try'),
  $$values ('backend_unavailable'::text, 'Modal returned 503'::text)$$,
  'the error of the attempt is kept for the record');

-- TEST: after attempt 1 the retry waits retry_delay(1) = 5 s ±25%
select cmp_ok((select run_after from public.generation_jobs where id = :'first_try'), '>=',
              now() + interval '3.75 seconds', 'attempt 1: run_after >= now() + 3.75 s');
select cmp_ok((select run_after from public.generation_jobs where id = :'first_try'), '<=',
              now() + interval '6.25 seconds', 'attempt 1: run_after <= now() + 6.25 s');

-- TEST: after attempt 2 it waits 10 s ±25%
select is(queue.fail_job('worker-a', :'second_try', 2, 'timeout', 'took too long', true), 'queued',
          'attempt 2 of 3 is queued again');
select cmp_ok((select run_after from public.generation_jobs where id = :'second_try'), '>=',
              now() + interval '7.5 seconds', 'attempt 2: run_after >= now() + 7.5 s');
select cmp_ok((select run_after from public.generation_jobs where id = :'second_try'), '<=',
              now() + interval '12.5 seconds', 'attempt 2: run_after <= now() + 12.5 s');

-- TEST: after attempt 3 (of 5) it waits 20 s ±25%
select is(queue.fail_job('worker-a', :'third_try', 3, 'timeout', 'took too long', true), 'queued',
          'attempt 3 of 5 is queued again');
select cmp_ok((select run_after from public.generation_jobs where id = :'third_try'), '>=',
              now() + interval '15 seconds', 'attempt 3: run_after >= now() + 15 s');
select cmp_ok((select run_after from public.generation_jobs where id = :'third_try'), '<=',
              now() + interval '25 seconds', 'attempt 3: run_after <= now() + 25 s');

-- TEST: a job waiting out its backoff is not claimable yet
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'no retried job is claimable before its run_after');

-- TEST: once due, the retry is claimed as the next attempt
update public.generation_jobs set run_after = now() where id = :'first_try';
select results_eq($$select id, attempts from queue.claim_jobs('worker-b', 10)$$,
                  format('values (%L::uuid, 2)', :'first_try'), 'the due retry is claimed as attempt 2');
select is((select locked_by from public.generation_jobs where id = :'first_try'), 'worker-b',
          'another worker may take the retry');

select * from finish();
rollback;
