-- Regression (fixed by the CHECK queued_job_has_an_attempt_left): attempts_within_max allows a *queued* job with attempts = max_attempts. An admin
-- gets there by lowering max_attempts on a job waiting for its retry (the CHECK accepts it; requeue_job
-- guards its own path with least(attempts, max_attempts - 1), nothing guards a direct UPDATE). claim_jobs then
-- sets attempts = max_attempts + 1, violates attempts_within_max and raises 23514 for the whole batch; the job
-- stays at the head of the queue, so every worker's every claim fails: one row stops the queue.
-- Either fix passes this test: a CHECK that refuses the admin's UPDATE, or a claim that skips or fails the row.
begin;
select plan(3);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'healthy', 0::smallint, now() - interval '1 minute') as healthy \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as retrying \gset
select queue.fail_job('worker-a', :'retrying', 1, 'timeout', 'slow', true) as failed_once \gset
select set_config('tests.retrying', :'retrying', true) as retrying_setting \gset

-- an admin allows no more retries for this job (a CHECK that refuses this is an acceptable fix)
do $$
begin
  update public.generation_jobs
     set max_attempts = 1, priority = 9, run_after = now() - interval '1 hour'
   where id = current_setting('tests.retrying')::uuid;
exception when check_violation then
  null;
end;
$$;

-- TEST: claiming still works
select lives_ok($$select queue.claim_jobs('worker-b', 10)$$, 'claim_jobs does not raise');
select is((select status from public.generation_jobs where id = :'healthy'), 'running',
          'the healthy job is claimed');

-- TEST: the job without attempts left is never running beyond its max_attempts
select ok((select attempts <= max_attempts from public.generation_jobs where id = :'retrying'),
          'the job''s attempts stay within max_attempts');

select * from finish();
rollback;
