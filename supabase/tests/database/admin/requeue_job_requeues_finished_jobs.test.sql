begin;
select plan(9);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_finished_job('alice', 'failed') as failed \gset
select tests.make_finished_job('alice', 'canceled') as canceled \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded \gset
update public.generation_jobs set attempts = 3 where id = :'failed';
update public.generation_jobs set run_after = now() - interval '1 day';

-- TEST: each final status goes back to the queue
select is(queue.requeue_job(:'failed'), 'queued', 'a failed job is requeued');
select is(queue.requeue_job(:'canceled'), 'queued', 'a canceled job is requeued');
select is(queue.requeue_job(:'succeeded'), 'queued', 'a succeeded job is requeued');

-- TEST: a requeued job is a fresh queued job: attempts reset, due now, not finished, progress 0
select results_eq(
  $$select status, attempts, run_after, progress, finished_at from public.generation_jobs order by id$$,
  $$values ('queued'::text, 0, now(), 0::real, null::timestamptz),
           ('queued'::text, 0, now(), 0::real, null::timestamptz),
           ('queued'::text, 0, now(), 0::real, null::timestamptz)$$,
  'all three: queued, attempts 0, run_after now, progress 0, finished_at null');
select is((select attempts from public.generation_jobs where id = :'failed'), 0,
          'the failed job''s 3 attempts are reset to 0');

-- TEST: the previous outcome is cleared
select results_eq(format($$select result_path, result_bytes from public.generation_jobs where id = %L$$,
                         :'succeeded'),
                  $$values (null::text, null::integer)$$, 'the succeeded job''s result is cleared');
select is((select cancel_requested_at from public.generation_jobs where id = :'canceled'), null,
          'the canceled job''s cancel request is cleared');

-- TEST: the requeued jobs are claimed again
select is((select count(*)::int from queue.claim_jobs('worker-a', 10)), 3, 'all three are claimable');
select is((select count(*)::int from public.generation_jobs where status = 'running' and attempts = 1), 3,
          'each is claimed as attempt 1');

select * from finish();
rollback;
