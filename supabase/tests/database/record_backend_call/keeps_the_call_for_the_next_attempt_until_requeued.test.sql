begin;
select plan(10);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-dead', 60, 1) as crashed \gset
select tests.make_running_job('alice', 'worker-stopping', 60, 1) as released \gset
select queue.record_backend_call('worker-dead', :'crashed', 1, 'fc-crashed') as r1 \gset
select queue.record_backend_call('worker-stopping', :'released', 1, 'fc-released') as r2 \gset

-- TEST: a worker that crashed leaves the call id to the job's next attempt (the reaper keeps it)
update public.generation_jobs set lease_expires_at = now() - interval '5 seconds' where id = :'crashed';
select is(queue.reap_expired_leases(), 1, 'the crashed worker''s job is reaped');
select results_eq(format($$select status, backend_call_id from public.generation_jobs where id = %L$$, :'crashed'),
                  $$values ('queued'::text, 'fc-crashed'::text)$$, 'queued again with its call id');

-- TEST: a stopping worker's release keeps it too
select is(queue.release_jobs('worker-stopping', array[:'released']::uuid[], array[1]), 1, 'the job is released');
select is((select backend_call_id from public.generation_jobs where id = :'released'), 'fc-released',
          'the released job keeps its call id');

-- TEST: the next claim hands the previous attempt's call id to the new owner
select set_eq(
  $$select id::text, attempts, backend_call_id from queue.claim_jobs('worker-b', 10)$$,
  format($$values (%L, 2, 'fc-crashed'), (%L, 1, 'fc-released')$$, :'crashed', :'released'),
  'worker-b claims both jobs and sees the calls to re-attach to');

-- TEST: complete_jobs records the call that produced the image
select is(queue.record_backend_call('worker-b', :'crashed', 2, 'fc-crashed'), true, 're-attached call recorded');
select is((select count(*)::int from queue.complete_jobs('worker-b', format(
             '[{"job_id": "%s", "claim": 2, "result_path": "%s", "backend": "modal", "backend_call_id": "fc-crashed"}]',
             :'crashed', tests.result_path_for(:'crashed'))::jsonb)), 1, 'the job completes');
select is((select backend_call_id from public.generation_jobs where id = :'crashed'), 'fc-crashed',
          'the succeeded job names the call that made its image');

-- TEST: an admin requeue generates anew: the call id is cleared
select is(queue.requeue_job(:'crashed'), 'queued', 'the succeeded job is requeued');
select is((select backend_call_id from public.generation_jobs where id = :'crashed'), null, 'no call id is left');

select * from finish();
rollback;
