begin;
select plan(6);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-other', 60, 1) as running \gset
select tests.make_running_job('alice', 'worker-dead', -5, 1) as expired \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded \gset
select tests.make_finished_job('alice', 'failed') as failed \gset
select tests.make_finished_job('alice', 'canceled') as canceled \gset

-- TEST: only queued jobs are claimable: running (even with an expired lease, which is the reaper's job) and
-- final jobs are not
select is_empty($$select * from queue.claim_jobs('worker-a', 10)$$, 'nothing is claimed');
select is((select locked_by from public.generation_jobs where id = :'running'), 'worker-other',
          'the running job keeps its worker');
select is((select locked_by from public.generation_jobs where id = :'expired'), 'worker-dead',
          'the running job with an expired lease keeps its worker until reaped');
select is((select status from public.generation_jobs where id = :'succeeded'), 'succeeded', 'succeeded stays');
select is((select status from public.generation_jobs where id = :'failed'), 'failed', 'failed stays');
select is((select status from public.generation_jobs where id = :'canceled'), 'canceled', 'canceled stays');

select * from finish();
rollback;
