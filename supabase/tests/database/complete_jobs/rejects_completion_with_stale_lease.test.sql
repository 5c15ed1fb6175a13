begin;
select plan(9);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as job \gset
select tests.make_job('alice', 'requeued') as requeued \gset
select tests.make_finished_job('alice', 'canceled') as canceled \gset
select tests.job_snapshot(:'job') as job_before \gset
select tests.job_snapshot(:'requeued') as requeued_before \gset
select tests.job_snapshot(:'canceled') as canceled_before \gset

-- TEST: another worker cannot complete the job
select is_empty(
  format($$select * from queue.complete_jobs('worker-b', '[{"job_id": "%s", "claim": 2, "result_path": "%s"}]')$$,
         :'job', tests.result_path_for(:'job')),
  'a wrong locked_by completes nothing');
-- TEST: the holder of a previous attempt cannot complete it either
select is_empty(
  format($$select * from queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1, "result_path": "%s"}]')$$,
         :'job', tests.result_path_for(:'job')),
  'a stale attempt completes nothing');
select is(tests.job_snapshot(:'job'), :'job_before'::jsonb, 'the running job is unchanged');

-- TEST: a job that went back to the queue or was canceled is not completed
select is_empty(
  format($$select * from queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 0, "result_path": "%s"}]')$$,
         :'requeued', tests.result_path_for(:'requeued')),
  'a queued job is not completed');
select is(tests.job_snapshot(:'requeued'), :'requeued_before'::jsonb, 'the queued job is unchanged');
select is_empty(
  format($$select * from queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1, "result_path": "%s"}]')$$,
         :'canceled', tests.result_path_for(:'canceled')),
  'a canceled job is not completed');
select is(tests.job_snapshot(:'canceled'), :'canceled_before'::jsonb, 'the canceled job is unchanged');

-- TEST: in a mixed batch only the job still held is completed
select tests.make_running_job('alice', 'worker-a', 60, 1) as held \gset
select results_eq(
  format($$select * from queue.complete_jobs('worker-a', %L::jsonb)$$,
         jsonb_build_array(
           jsonb_build_object('job_id', :'held', 'claim', 1, 'result_path', tests.result_path_for(:'held')),
           jsonb_build_object('job_id', :'job', 'claim', 1, 'result_path', tests.result_path_for(:'job')))),
  format('values (%L::uuid)', :'held'),
  'only the held job comes back');
select is(tests.job_snapshot(:'job'), :'job_before'::jsonb, 'the stale job in the batch is unchanged');

select * from finish();
rollback;
