begin;
select plan(5);

select tests.create_supabase_user('alice') as alice \gset
select tests.create_supabase_user('bob') as bob \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as batch_mate \gset

-- TEST: a result in another user's folder is a check violation
select throws_ok(
  format($$select queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1, "result_path": "%s/%s.png"}]')$$,
         :'job', :'bob', :'job'),
  '23514', 'new row for relation "generation_jobs" violates check constraint "result_path_is_owner_folder"',
  'a result_path in another user''s folder is rejected');

-- TEST: a file name other than <job_id>.png is a check violation
select throws_ok(
  format($$select queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1, "result_path": "%s/%s.jpg"}]')$$,
         :'job', :'alice', :'job'),
  '23514', 'new row for relation "generation_jobs" violates check constraint "result_path_is_owner_folder"',
  'a result_path with another file name is rejected');

-- TEST: a success without a result_path is a check violation
select throws_ok(
  format($$select queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1}]')$$, :'job'),
  '23514', 'new row for relation "generation_jobs" violates check constraint "result_only_when_succeeded"',
  'a success without result_path is rejected');

-- TEST: one bad result rejects the whole batch (the statement is atomic)
select throws_ok(
  format($$select queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1, "result_path": "%s"},
                                                    {"job_id": "%s", "claim": 1, "result_path": "elsewhere.png"}]')$$,
         :'batch_mate', tests.result_path_for(:'batch_mate'), :'job'),
  '23514', 'new row for relation "generation_jobs" violates check constraint "result_path_is_owner_folder"',
  'a batch with one bad result_path is rejected');
select is((select count(*)::int from public.generation_jobs where status = 'running'), 2,
          'both jobs are still running');

select * from finish();
rollback;
