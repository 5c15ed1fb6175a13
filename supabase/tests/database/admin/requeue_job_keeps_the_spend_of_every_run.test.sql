begin;
select plan(6);

-- GPU time is paid per run. A requeue clears the row for the next run, but the spend of the run it clears is real:
-- requeue_job keeps it in queue.job_runs (by the time that run finished), and queue.job_stats and
-- queue.record_cost_alert sum the live rows and those kept runs over the last 24 hours.
delete from public.generation_jobs;   -- sum from a known state (rolled back)
select tests.create_supabase_user('alice');
select tests.make_job('alice') as job \gset

select is((select count(*)::integer from queue.claim_jobs('worker-a', 1)), 1, 'the job is claimed');
select is((select count(*)::integer from queue.complete_jobs('worker-a', jsonb_build_array(jsonb_build_object(
             'job_id', :'job', 'claim', 1, 'result_path', tests.result_path_for(:'job'), 'result_bytes', 1,
             'backend', 'modal', 'backend_call_id', 'fc-1', 'gpu_seconds', 30, 'cost_usd', 0.05)))),
          1, 'the first run succeeds, 30 GPU seconds for 0.05 USD');
select is(queue.requeue_job(:'job'), 'queued', 'an admin requeues it (attempts reset)');
select is((select count(*)::integer from queue.claim_jobs('worker-b', 1)), 1, 'the job is claimed again (its second claim)');
select is((select count(*)::integer from queue.complete_jobs('worker-b', jsonb_build_array(jsonb_build_object(
             'job_id', :'job', 'claim', 2, 'result_path', tests.result_path_for(:'job'), 'result_bytes', 1,
             'backend', 'modal', 'backend_call_id', 'fc-2', 'gpu_seconds', 20, 'cost_usd', 0.03)))),
          1, 'the second run succeeds, 20 GPU seconds for 0.03 USD');

-- TEST: both runs count
select results_eq($$select gpu_seconds_last_24h::float8, cost_usd_last_24h::numeric from queue.job_stats$$,
                  $$values (50::float8, 0.08::numeric)$$, 'the last 24 h count the spend of both runs');

select * from finish();
rollback;
