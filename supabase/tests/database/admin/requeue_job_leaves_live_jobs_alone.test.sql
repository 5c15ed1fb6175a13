begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'waiting') as queued \gset
select tests.make_running_job('alice', 'worker-a', 60, 2) as running \gset
select tests.job_snapshot(:'queued') as queued_before \gset
select tests.job_snapshot(:'running') as running_before \gset

-- TEST: a queued job answers queued and is not touched
select is(queue.requeue_job(:'queued'), 'queued', 'requeue of a queued job answers queued');
select is(tests.job_snapshot(:'queued'), :'queued_before'::jsonb, 'the queued job is unchanged');

-- TEST: a running job answers running and keeps its worker, lease and attempt
select is(queue.requeue_job(:'running'), 'running', 'requeue of a running job answers running');
select is(tests.job_snapshot(:'running'), :'running_before'::jsonb, 'the running job is unchanged');

select * from finish();
rollback;
