begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-dead', -5, 3) as last_try \gset
update public.generation_jobs set progress = 0.8 where id = :'last_try';

-- TEST: an expired lease on the last allowed attempt fails the job
select is(queue.reap_expired_leases(), 1, 'one job is reaped');
select results_eq(
  format($$select status, attempts, finished_at, locked_by, lease_expires_at, progress
           from public.generation_jobs where id = %L$$, :'last_try'),
  $$values ('failed'::text, 3, now(), null::text, null::timestamptz, 0.8::real)$$,
  'failed after 3 of 3 attempts, finished now, lease cleared, progress kept');
select is((select error_code from public.generation_jobs where id = :'last_try'), 'lease_expired',
          'error_code is lease_expired');

-- TEST: it is not claimed again
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'the failed job is not claimable');

select * from finish();
rollback;
