begin;
select plan(3);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select queue.request_cancel(:'job') as cancel_result \gset

-- TEST: a job whose cancel was requested is not requeued on release: it is canceled
select is(queue.release_jobs('worker-a', array[:'job']::uuid[], array[2]), 1, 'the job is released');
select results_eq(
  format($$select status, finished_at, locked_by, lease_expires_at, attempts from public.generation_jobs
           where id = %L$$, :'job'),
  $$values ('canceled'::text, now(), null::text, null::timestamptz, 1)$$,
  'canceled, finished now, lease cleared, attempt not counted');

-- TEST: so no worker claims it again
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'the canceled job is not claimable');

select * from finish();
rollback;
