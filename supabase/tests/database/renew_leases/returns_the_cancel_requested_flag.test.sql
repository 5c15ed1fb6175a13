begin;
select plan(3);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 30, 1) as keep_going \gset
select tests.make_running_job('alice', 'worker-a', 30, 1) as to_cancel \gset
select queue.request_cancel(:'to_cancel') as cancel_result \gset

-- TEST: the job whose cancel was requested comes back flagged; the other is not
select set_eq(
  format($$select job_id, cancel_requested from queue.renew_leases('worker-a', array[%L, %L]::uuid[], array[1, 1])$$,
         :'keep_going', :'to_cancel'),
  format('values (%L::uuid, false), (%L::uuid, true)', :'keep_going', :'to_cancel'),
  'cancel_requested is true only for the job whose cancel was requested');

-- TEST: the flagged job still gets its lease renewed (it stays running until the worker acknowledges)
select is((select lease_expires_at from public.generation_jobs where id = :'to_cancel'), now() + interval '60 seconds',
          'the flagged job''s lease is renewed');
select is((select status from public.generation_jobs where id = :'to_cancel'), 'running',
          'the flagged job is still running');

select * from finish();
rollback;
