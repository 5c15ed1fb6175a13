begin;
select plan(5);

select tests.create_supabase_user('alice');
select set_config('tests.job', tests.make_running_job('alice', 'worker-a', 60, 2)::text, true);

-- TEST: a completion writes one audit row with the attempt and the worker that held the lease
select queue.complete_jobs('worker-a', jsonb_build_array(jsonb_build_object(
  'job_id', current_setting('tests.job'), 'claim', 2,
  'result_path', tests.get_supabase_uid('alice') || '/' || current_setting('tests.job') || '.png')));
select results_eq(
  format($$select attempt, worker_id from queue.job_completions where job_id = %L$$, current_setting('tests.job')),
  $$values (2, 'worker-a'::text)$$, 'one audit row: attempt 2 by worker-a');

-- TEST: a stale completion (fenced out) writes no audit row
select queue.complete_jobs('worker-b', jsonb_build_array(jsonb_build_object(
  'job_id', current_setting('tests.job'), 'claim', 1,
  'result_path', tests.get_supabase_uid('alice') || '/' || current_setting('tests.job') || '.png')));
select is((select count(*)::integer from queue.job_completions), 1, 'a fenced-out completion leaves no audit row');

-- TEST: progress and other non-completing updates write nothing
select tests.make_running_job('alice', 'worker-c', 60, 1);
update public.generation_jobs set progress = 0.5 where locked_by = 'worker-c';
select is((select count(*)::integer from queue.job_completions), 1, 'progress writes are not audited');

-- TEST: purging the job purges its audit rows
update public.generation_jobs set finished_at = now() - interval '40 days' where id = current_setting('tests.job')::uuid;
select is((select count(*)::integer from queue.purge_finished_jobs(interval '30 days')), 1, 'the old job is purged');
select is((select count(*)::integer from queue.job_completions), 0, 'and its audit rows with it');

select * from finish();
rollback;
