begin;
select plan(5);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select queue.report_progress('worker-a', :'job', 2, 0.4) as reported \gset
select queue.request_cancel(:'job') as cancel_result \gset

-- TEST: the worker stopped the job: running -> canceled
select is(queue.acknowledge_cancel('worker-a', :'job', 2), true, 'acknowledge_cancel answers true');
select results_eq(
  format($$select status, finished_at, locked_by, lease_expires_at from public.generation_jobs where id = %L$$,
         :'job'),
  $$values ('canceled'::text, now(), null::text, null::timestamptz)$$,
  'canceled, finished now, lease cleared');
select results_eq(
  format($$select attempts, progress, cancel_requested_at is not null from public.generation_jobs where id = %L$$,
         :'job'),
  $$values (2, 0.4::real, true)$$, 'attempts, progress and the cancel request are kept');

-- TEST: acknowledging twice is harmless
select is(queue.acknowledge_cancel('worker-a', :'job', 2), false, 'a second acknowledgement answers false');
select is((select status from public.generation_jobs where id = :'job'), 'canceled', 'the job stays canceled');

select * from finish();
rollback;
