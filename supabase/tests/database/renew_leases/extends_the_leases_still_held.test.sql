begin;
select plan(7);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 10, 1) as first \gset
select tests.make_running_job('alice', 'worker-a', 10, 2) as second \gset
-- even a lease that just expired but has not been reaped yet may be renewed by its holder
select tests.make_running_job('alice', 'worker-a', -1, 1) as just_expired \gset

-- TEST: every (job, attempt) pair still held comes back, none flagged for cancel
select set_eq(
  format($$select job_id, cancel_requested from queue.renew_leases('worker-a', array[%L, %L, %L]::uuid[],
                                                                  array[1, 2, 1], 90)$$,
         :'first', :'second', :'just_expired'),
  format('values (%L::uuid, false), (%L::uuid, false), (%L::uuid, false)', :'first', :'second', :'just_expired'),
  'all three held leases are renewed');

-- TEST: each lease now ends lease_seconds from now
select is((select lease_expires_at from public.generation_jobs where id = :'first'), now() + interval '90 seconds',
          'first lease ends now() + 90 s');
select is((select lease_expires_at from public.generation_jobs where id = :'second'), now() + interval '90 seconds',
          'second lease ends now() + 90 s');
select is((select lease_expires_at from public.generation_jobs where id = :'just_expired'),
          now() + interval '90 seconds', 'the just-expired lease is extended too');

-- TEST: nothing but the lease changes
select is((select (status, attempts, locked_by, progress)::text from public.generation_jobs where id = :'second'),
          '(running,2,worker-a,0)', 'status, attempts, worker and progress are unchanged');

-- TEST: the default lease is 60 seconds
select is((select count(*)::int from queue.renew_leases('worker-a', array[:'first']::uuid[], array[1])), 1,
          'renewed with the default');
select is((select lease_expires_at from public.generation_jobs where id = :'first'), now() + interval '60 seconds',
          'lease_seconds defaults to 60');

select * from finish();
rollback;
