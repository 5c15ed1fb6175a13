begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-dead', -5, 1) as to_cancel \gset
select tests.make_running_job('alice', 'worker-dead', -5, 3) as to_cancel_last_try \gset
select queue.request_cancel(:'to_cancel') as r1 \gset
select queue.request_cancel(:'to_cancel_last_try') as r2 \gset

-- TEST: a job whose cancel was requested is canceled, not requeued, whatever its attempts
select is(queue.reap_expired_leases(), 2, 'both jobs are reaped');
select results_eq(
  format($$select status, finished_at, locked_by, lease_expires_at from public.generation_jobs
           where id in (%L, %L)$$, :'to_cancel', :'to_cancel_last_try'),
  $$values ('canceled'::text, now(), null::text, null::timestamptz),
           ('canceled'::text, now(), null::text, null::timestamptz)$$,
  'both are canceled, finished now, lease cleared');

-- TEST: a canceled job carries no lease_expired error: it was canceled, not lost
select is((select count(*)::int from public.generation_jobs where error_code is not null), 0,
          'no error_code is recorded');
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'neither job is claimable');

select * from finish();
rollback;
