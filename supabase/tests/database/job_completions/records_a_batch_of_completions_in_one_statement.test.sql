begin;
select plan(4);

select tests.create_supabase_user('alice');
select set_config('tests.j1', tests.make_running_job('alice', 'worker-a', 60, 1)::text, true);
select set_config('tests.j2', tests.make_running_job('alice', 'worker-a', 60, 3)::text, true);
select set_config('tests.j3', tests.make_running_job('alice', 'worker-b', 60, 1)::text, true);

-- TEST: one complete_jobs statement for three jobs, one of them fenced out (worker-b holds it), writes two rows
select queue.complete_jobs('worker-a', (
  select jsonb_agg(jsonb_build_object('job_id', j, 'claim', a,
                                      'result_path', tests.get_supabase_uid('alice') || '/' || j || '.png'))
  from (values (current_setting('tests.j1'), 1), (current_setting('tests.j2'), 3),
               (current_setting('tests.j3'), 1)) as v(j, a)));
select results_eq(
  $$select job_id::text, attempt, worker_id from queue.job_completions order by attempt$$,
  format($$values (%L, 1, 'worker-a'::text), (%L, 3, 'worker-a'::text)$$,
         current_setting('tests.j1'), current_setting('tests.j2')),
  'one audit row per completed job of the batch, with its attempt and worker; none for the fenced-out one');

-- TEST: an UPDATE that touches succeeded rows without a transition to succeeded adds nothing
update public.generation_jobs set metadata = metadata where status = 'succeeded';
select is((select count(*)::integer from queue.job_completions), 2, 'updating succeeded rows is not a completion');

-- TEST: a statement that claims and progresses writes nothing
select tests.make_running_job('alice', 'worker-c', 60, 1);
update public.generation_jobs set progress = 0.25 where locked_by is not null;
select is((select count(*)::integer from queue.job_completions), 2, 'a multi-row progress update is not audited');

-- TEST: the audit trigger is per statement (one call per UPDATE, not per row)
select is((select tgtype & 1 from pg_trigger where tgname = 'generation_jobs_record_completions'), 0,
          'generation_jobs_record_completions is a statement-level trigger');

select * from finish();
rollback;
