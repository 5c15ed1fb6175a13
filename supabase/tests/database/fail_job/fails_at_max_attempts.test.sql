begin;
select plan(5);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 3) as last_try \gset
update public.generation_jobs set run_after = now() - interval '1 hour', progress = 0.3 where id = :'last_try';

-- TEST: a retryable failure on the last allowed attempt is final
select is(queue.fail_job('worker-a', :'last_try', 3, 'timeout', 'took too long', true), 'failed',
          'attempt 3 of 3 answers failed');
select results_eq(
  format($$select status, attempts, finished_at, locked_by, lease_expires_at
           from public.generation_jobs where id = %L$$, :'last_try'),
  $$values ('failed'::text, 3, now(), null::text, null::timestamptz)$$,
  'failed, attempts stay 3, finished now, lease cleared');
select results_eq(
  format($$select error_code, error_message from public.generation_jobs where id = %L$$, :'last_try'),
  $$values ('timeout'::text, 'took too long'::text)$$, 'the error fields are stored');

-- TEST: a failed job keeps its progress and run_after (no backoff is scheduled)
select is((select progress from public.generation_jobs where id = :'last_try'), 0.3::real, 'progress is kept');
select is((select run_after from public.generation_jobs where id = :'last_try'), now() - interval '1 hour',
          'run_after is unchanged');

select * from finish();
rollback;
