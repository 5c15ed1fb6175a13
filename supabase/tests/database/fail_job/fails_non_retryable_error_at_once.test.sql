begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset

-- TEST: a non-retryable error fails the job on its first attempt, attempts left or not
select is(queue.fail_job('worker-a', :'job', 1, 'bad_request', 'the prompt was refused by the model', false),
          'failed', 'fail_job answers failed');
select results_eq(
  format($$select status, attempts, max_attempts, finished_at, locked_by, lease_expires_at
           from public.generation_jobs where id = %L$$, :'job'),
  $$values ('failed'::text, 1, 3, now(), null::text, null::timestamptz)$$,
  'failed after 1 of 3 attempts, finished now, lease cleared');
select results_eq(
  format($$select error_code, error_message from public.generation_jobs where id = %L$$, :'job'),
  $$values ('bad_request'::text, 'the prompt was refused by the model'::text)$$, 'the error fields are stored');

-- TEST: it is not claimed again
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'the failed job is not claimable');

select * from finish();
rollback;
