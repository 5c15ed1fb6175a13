begin;
select plan(7);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as first \gset
select tests.make_running_job('alice', 'worker-a', 60, 3) as last_try \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as kept \gset
update public.generation_jobs set run_after = now() - interval '1 hour', progress = 0.7
 where id in (:'first', :'last_try');

-- TEST: release_jobs answers how many jobs it gave back
select is(queue.release_jobs('worker-a', array[:'first', :'last_try']::uuid[], array[1, 3]), 2,
          'two jobs are released');

-- TEST: released jobs are queued at once, with the attempt not counted and the lease and progress cleared
select results_eq(
  format($$select status, attempts, run_after, progress, locked_by, lease_expires_at, finished_at
           from public.generation_jobs where id = %L$$, :'first'),
  $$values ('queued'::text, 0, now(), 0::real, null::text, null::timestamptz, null::timestamptz)$$,
  'attempt 1 released: queued, attempts 0, due now, progress 0, no lease');
select is((select attempts from public.generation_jobs where id = :'last_try'), 2,
          'a released last attempt gives the attempt back (3 -> 2)');
select is((select status from public.generation_jobs where id = :'last_try'), 'queued',
          'the released last attempt is queued, not failed');

-- TEST: a held job that is not named stays with the worker
select is((select locked_by from public.generation_jobs where id = :'kept'), 'worker-a',
          'the job not named is still leased');

-- TEST: the released jobs are claimable again at once, with the same attempt number as before
select set_eq($$select id, attempts from queue.claim_jobs('worker-b', 10)$$,
              format('values (%L::uuid, 1), (%L::uuid, 3)', :'first', :'last_try'),
              'another worker claims them again as attempts 1 and 3');

-- TEST: releasing nothing answers 0
select is(queue.release_jobs('worker-a', '{}'::uuid[], '{}'::int[]), 0, 'an empty release answers 0');

select * from finish();
rollback;
