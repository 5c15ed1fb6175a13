begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_finished_job('alice', 'failed') as exhausted \gset
select tests.make_finished_job('alice', 'canceled') as canceled_early \gset
update public.generation_jobs set attempts = 3 where id = :'exhausted';

-- TEST: with reset_attempts = false an exhausted job keeps its count minus one, so one attempt is left
select is(queue.requeue_job(:'exhausted', false), 'queued', 'the exhausted job is requeued');
select is((select attempts from public.generation_jobs where id = :'exhausted'), 2,
          'attempts 3 of 3 becomes 2: exactly one attempt left');

-- TEST: a job with attempts left keeps them as they are
select is(queue.requeue_job(:'canceled_early', false), 'queued', 'the canceled job is requeued');
select is((select attempts from public.generation_jobs where id = :'canceled_early'), 1,
          'attempts 1 of 3 stays 1');

select * from finish();
rollback;
