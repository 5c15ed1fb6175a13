begin;
select plan(12);

select tests.create_supabase_user('alice') as alice \gset
select tests.create_supabase_user('bob') as bob \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as first \gset
select tests.make_running_job('bob', 'worker-a', 60, 2) as second \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as still_running \gset
-- the second job failed once before: its error fields must be cleared on success
update public.generation_jobs set error_code = 'transient', error_message = 'GPU busy', progress = 0.6
 where id = :'second';

-- TEST: both jobs of the batch are completed and their ids returned
select set_eq(
  format($$select * from queue.complete_jobs('worker-a', %L::jsonb)$$,
         jsonb_build_array(
           jsonb_build_object('job_id', :'first', 'claim', 1, 'result_path', tests.result_path_for(:'first'),
                              'result_bytes', 1048576, 'backend', 'modal', 'backend_call_id', 'fc-1',
                              'gpu_seconds', 7.5, 'cost_usd', 0.012345),
           jsonb_build_object('job_id', :'second', 'claim', 2, 'result_path', tests.result_path_for(:'second'),
                              'result_bytes', 2048, 'backend', 'local'))),
  format('values (%L::uuid), (%L::uuid)', :'first', :'second'),
  'complete_jobs returns the ids it completed');

-- TEST: each completed row is succeeded, with the lease and errors cleared, progress 1 and finished_at set
select results_eq(
  format($$select status, progress, finished_at, locked_by, lease_expires_at, error_code, error_message
           from public.generation_jobs where id in (%L, %L) order by id$$, :'first', :'second'),
  $$values ('succeeded'::text, 1::real, now(), null::text, null::timestamptz, null::text, null::text),
           ('succeeded'::text, 1::real, now(), null::text, null::timestamptz, null::text, null::text)$$,
  'succeeded, progress 1, finished now, no lease, no error');

-- TEST: the result columns are stored as given
select is((select result_path from public.generation_jobs where id = :'first'),
          (:'alice')::text || '/' || (:'first')::text || '.png', 'result_path is <user_id>/<job_id>.png');
select is((select result_bytes from public.generation_jobs where id = :'first'), 1048576, 'result_bytes stored');
select is((select backend from public.generation_jobs where id = :'first'), 'modal', 'backend stored');
select is((select backend_call_id from public.generation_jobs where id = :'first'), 'fc-1', 'backend_call_id stored');
select is((select gpu_seconds from public.generation_jobs where id = :'first'), 7.5::real, 'gpu_seconds stored');
select is((select cost_usd from public.generation_jobs where id = :'first'), 0.012345::numeric, 'cost_usd stored');
select is((select (result_path, result_bytes, backend, backend_call_id, gpu_seconds, cost_usd)::text
           from public.generation_jobs where id = :'second'),
          format('(%s/%s.png,2048,local,,,)', :'bob', :'second'),
          'omitted result fields are stored as null');
select is((select attempts from public.generation_jobs where id = :'second'), 2, 'attempts are not changed');

-- TEST: a job not in the batch is untouched
select is((select status from public.generation_jobs where id = :'still_running'), 'running',
          'the job outside the batch is still running');

-- TEST: an empty batch completes nothing
select is_empty($$select * from queue.complete_jobs('worker-a', '[]'::jsonb)$$, 'an empty batch completes nothing');

select * from finish();
rollback;
