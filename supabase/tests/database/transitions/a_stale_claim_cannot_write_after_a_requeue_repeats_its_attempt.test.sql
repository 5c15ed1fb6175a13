begin;
select plan(7);

-- The fence is (worker, claim): claim_jobs numbers every claim of a job (generation_jobs.claims, never reset), and
-- each worker write names the claim it holds. The attempt count is no fence: requeue_job(reset_attempts) sets it
-- back to 0 and release_jobs gives one back, so the same worker can hold attempt 1 of a job twice. A task left
-- over from the first claim (its lease lost, the job failed, requeued and claimed again by the same worker) must
-- change nothing.
select tests.create_supabase_user('alice');
select tests.make_job('alice') as job \gset

select is((select attempts from queue.claim_jobs('worker-a', 1)), 1, 'worker-a claims the job: attempt 1');
select claims as stale_claim from public.generation_jobs where id = :'job' \gset
update public.generation_jobs set lease_expires_at = now() - interval '1 second', max_attempts = 1
 where id = :'job';
select is(queue.reap_expired_leases(), 1, 'its lease expires: reaped, failed (no attempt left)');
select is(queue.requeue_job(:'job', true), 'queued', 'an admin requeues it, attempts reset');
select is((select attempts from queue.claim_jobs('worker-a', 1)), 1, 'the same worker claims it again: attempt 1 again');
select tests.job_snapshot(:'job') as before \gset

-- TEST: the stale claim's writes change nothing
select is_empty(format($$select * from queue.complete_jobs('worker-a', jsonb_build_array(jsonb_build_object(
                  'job_id', %L, 'claim', %s, 'result_path', tests.result_path_for(%L), 'result_bytes', 1,
                  'backend', 'stale')))$$, :'job', :'stale_claim', :'job'),
                'the stale task''s completion is refused');
select ok(not queue.report_progress('worker-a', :'job', :'stale_claim', 0.9), 'its progress is refused');
select is(tests.job_snapshot(:'job'), :'before'::jsonb, 'the new run is untouched');

select * from finish();
rollback;
