begin;
select plan(10);

-- A requeued job keeps its request and drops everything its previous run recorded, so an old run's GPU time and
-- cost are not counted again when the job finishes anew (queue.job_stats sums them by finished_at; queue.requeue_job in
-- supabase/migrations/*_queue_functions.sql).
select tests.create_supabase_user('alice');
select tests.make_job('alice') as job \gset
select tests.make_job('alice') as failed_job \gset

select is((select count(*)::integer from queue.claim_jobs('worker-a', 2)), 2, 'both jobs are claimed');
select is((select array_agg(id) from queue.complete_jobs('worker-a', jsonb_build_array(jsonb_build_object(
             'job_id', :'job', 'claim', 1, 'result_path', tests.result_path_for(:'job'), 'result_bytes', 123456,
             'backend', 'modal', 'backend_call_id', 'fc-123', 'gpu_seconds', 30, 'cost_usd', 0.05))) as done(id)),
          array[:'job'::uuid], 'the first job succeeds, with its backend call, GPU time and cost');
select is(queue.fail_job('worker-a', :'failed_job', 1, 'oom', 'out of memory', false), 'failed',
          'the second job fails for good');
-- both finished three days ago
update public.generation_jobs set finished_at = now() - interval '3 days';

create temporary table request_before on commit drop as
  select id, to_jsonb(j) - array['status', 'attempts', 'run_after', 'progress', 'started_at', 'finished_at',
                                 'locked_by', 'lease_expires_at', 'cancel_requested_at', 'error_code',
                                 'error_message', 'result_path', 'result_bytes', 'backend', 'backend_call_id',
                                 'gpu_seconds', 'cost_usd', 'updated_at'] as request
  from public.generation_jobs j;

-- TEST: the old run is outside the 24-hour window
select results_eq($$select gpu_seconds_last_24h::float8, cost_usd_last_24h::float8 from queue.job_stats$$,
                  $$values (0::float8, 0::float8)$$, 'a run finished three days ago costs nothing today');

-- TEST: requeued, every field of the previous run is cleared
select is(queue.requeue_job(:'job'), 'queued', 'the succeeded job is requeued');
select is(queue.requeue_job(:'failed_job', false), 'queued', 'the failed job is requeued keeping its attempts');
select results_eq(
  $$select status, started_at, finished_at, locked_by, lease_expires_at, cancel_requested_at, error_code,
           error_message, result_path, result_bytes, backend, backend_call_id, gpu_seconds, cost_usd, progress
    from public.generation_jobs order by id$$,
  $$values ('queued'::text, null::timestamptz, null::timestamptz, null::text, null::timestamptz, null::timestamptz,
            null::text, null::text, null::text, null::integer, null::text, null::text, null::real, null::numeric,
            0::real),
           ('queued', null, null, null, null, null, null, null, null, null, null, null, null, null, 0)$$,
  'status queued; start, finish, lease, cancel, error, result, backend call, GPU time and cost cleared');

-- TEST: the request and what insert resolved it to are kept
select is((select count(*)::integer from public.generation_jobs j join request_before b using (id)
           where to_jsonb(j) - array['status', 'attempts', 'run_after', 'progress', 'started_at', 'finished_at',
                                     'locked_by', 'lease_expires_at', 'cancel_requested_at', 'error_code',
                                     'error_message', 'result_path', 'result_bytes', 'backend', 'backend_call_id',
                                     'gpu_seconds', 'cost_usd', 'updated_at'] = b.request), 2,
          'prompt, resolved request, seed, priority, max_attempts and created_at are unchanged');

-- TEST: canceled again before any claim, the job reports no cost of a run that never happened
select is(queue.cancel_job(:'job'), 'canceled', 'the requeued job is canceled while queued');
select results_eq($$select canceled_last_24h::integer, gpu_seconds_last_24h::float8, cost_usd_last_24h::float8
                    from queue.job_stats$$,
                  $$values (1, 0::float8, 0::float8)$$,
                  'job_stats counts the cancel today with no GPU time and no cost');

select * from finish();
rollback;
