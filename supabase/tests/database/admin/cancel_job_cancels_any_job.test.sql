begin;
select plan(8);

select tests.create_supabase_user('alice') as alice \gset
select tests.create_supabase_user('bob') as bob \gset
select tests.make_job('alice', 'waiting') as queued \gset
select tests.make_running_job('bob', 'worker-a', 60, 1) as running \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded \gset
select tests.job_snapshot(:'succeeded') as succeeded_before \gset

-- TEST: a queued job of any user is canceled at once
select is(queue.cancel_job(:'queued'), 'canceled', 'cancel_job of a queued job answers canceled');
select results_eq(format($$select status, finished_at, cancel_requested_at from public.generation_jobs where id = %L$$,
                         :'queued'),
                  $$values ('canceled'::text, now(), now())$$, 'canceled, finished now, cancel requested now');

-- TEST: a running job gets a cancel request and stays with its worker until it acknowledges
select is(queue.cancel_job(:'running'), 'cancel_requested', 'cancel_job of a running job answers cancel_requested');
select results_eq(format($$select status, locked_by, cancel_requested_at from public.generation_jobs where id = %L$$,
                         :'running'),
                  $$values ('running'::text, 'worker-a'::text, now())$$, 'still running, cancel requested now');
select is(queue.acknowledge_cancel('worker-a', :'running', 1), true, 'the worker acknowledges the cancel');

-- TEST: a final job answers its status and is not changed
select is(queue.cancel_job(:'succeeded'), 'succeeded', 'cancel_job of a succeeded job answers succeeded');
select is(tests.job_snapshot(:'succeeded'), :'succeeded_before'::jsonb, 'the succeeded job is unchanged');

-- TEST: canceling twice is harmless
select is(queue.cancel_job(:'queued'), 'canceled', 'a second cancel answers canceled');

select * from finish();
rollback;
