begin;
select plan(8);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select tests.make_finished_job('alice', 'failed') as finished \gset

-- TEST: the worker holding the attempt records its call id at once, while the job runs
select is(queue.record_backend_call('worker-a', :'job', 2, 'fc-first'), true, 'the holder records its call');
select results_eq(format($$select status, backend_call_id from public.generation_jobs where id = %L$$, :'job'),
                  $$values ('running'::text, 'fc-first'::text)$$, 'the running job carries the call id');

-- TEST: a second call of the same attempt (re-attach failed, spawned anew) replaces it
select is(queue.record_backend_call('worker-a', :'job', 2, 'fc-second'), true, 'the holder records a new call');
select is((select backend_call_id from public.generation_jobs where id = :'job'), 'fc-second',
          'the latest call id is kept');

-- TEST: fencing: another worker, a stale attempt or a finished job change nothing
select is(queue.record_backend_call('worker-b', :'job', 2, 'fc-other'), false, 'another worker answers false');
select is(queue.record_backend_call('worker-a', :'job', 1, 'fc-stale'), false, 'a stale attempt answers false');
select is(queue.record_backend_call('worker-a', :'finished', 1, 'fc-late'), false, 'a finished job answers false');
select is((select backend_call_id from public.generation_jobs where id = :'job'), 'fc-second',
          'the refused writes changed nothing');

select * from finish();
rollback;
