begin;
select plan(14);

select tests.create_supabase_user('alice') as alice \gset
-- five claimable jobs whose claim order is fixed by priority desc, then run_after, then created_at
select tests.make_job('alice', 'low priority, oldest run_after', 0::smallint, now() - interval '10 minutes') as low \gset
select tests.make_job('alice', 'high priority, later run_after', 5::smallint, now() - interval '1 minute') as high_late \gset
select tests.make_job('alice', 'high priority, earlier run_after', 5::smallint, now() - interval '5 minutes') as high_early \gset
select tests.make_job('alice', 'mid priority, created later', 1::smallint, now() - interval '2 minutes') as mid_late \gset
select tests.make_job('alice', 'mid priority, created earlier', 1::smallint, now() - interval '2 minutes') as mid_early \gset
update public.generation_jobs set created_at = now() - interval '1 minute' where prompt = 'mid priority, created later';
update public.generation_jobs set created_at = now() - interval '3 minutes' where prompt = 'mid priority, created earlier';

-- TEST: higher priority first, then earlier run_after, then earlier created_at
select is((select prompt from queue.claim_jobs('worker-a', 1)), 'high priority, earlier run_after',
          '1st claim: highest priority, earliest run_after');
select is((select prompt from queue.claim_jobs('worker-a', 1)), 'high priority, later run_after',
          '2nd claim: highest priority, later run_after');
select is((select prompt from queue.claim_jobs('worker-a', 1)), 'mid priority, created earlier',
          '3rd claim: same priority and run_after, earlier created_at wins');
select is((select prompt from queue.claim_jobs('worker-a', 1)), 'mid priority, created later',
          '4th claim: the later-created one');
select is((select prompt from queue.claim_jobs('worker-a', 1)), 'low priority, oldest run_after',
          '5th claim: the lowest priority last, despite its oldest run_after');

-- back to the queue: release_jobs sets run_after = now() on every job it gives back, and the two high-priority
-- jobs were created by this transaction (created_at = now()), so they are now equal on priority, run_after and
-- created_at: only the id orders them
select is(queue.release_jobs('worker-a', array(select id from public.generation_jobs where status = 'running'),
                             array(select claims from public.generation_jobs where status = 'running')),
          5, 'the five are released');
select is((select count(distinct (priority, run_after, created_at))::int from public.generation_jobs
           where id in (:'high_late', :'high_early')), 1,
          'the two high-priority jobs are equal on priority, run_after and created_at');

-- TEST: a batch claim takes the head of the queue
select set_eq(
  $$select prompt from queue.claim_jobs('worker-batch', 2)$$,
  array['high priority, earlier run_after', 'high priority, later run_after'],
  'a batch of 2 claims the two highest-priority jobs');
select is(queue.release_jobs('worker-batch', array(select id from public.generation_jobs where locked_by = 'worker-batch'),
                             array(select claims from public.generation_jobs where locked_by = 'worker-batch')),
          2, 'the batch is released');

-- TEST: tied on priority, run_after and created_at, the smaller id is claimed first
select is((select id from queue.claim_jobs('worker-a', 1)), least(:'high_late'::uuid, :'high_early'::uuid),
          'tied high-priority jobs: the smaller id first');
select is((select id from queue.claim_jobs('worker-a', 1)), greatest(:'high_late'::uuid, :'high_early'::uuid),
          'then the larger id');

-- TEST: rows equal on priority, run_after and created_at are claimed in id order, not in physical order.
-- One statement inserts three such rows (created_at = now() for all) in descending id order, so that heap
-- order, and the order of equal keys in an index without id, is the reverse of id order.
insert into public.generation_jobs (id, user_id, prompt, priority, run_after, width, height)
select ('00000000-0000-4000-8000-00000000000' || n)::uuid, tests.get_supabase_uid('alice'), 'tied ' || n,
       7::smallint, now() - interval '1 minute', 512, 512
from generate_series(3, 1, -1) as n;
select is((select id from queue.claim_jobs('worker-a', 1)), '00000000-0000-4000-8000-000000000001'::uuid,
          '1st tied claim: the smallest id, though inserted last');
select is((select id from queue.claim_jobs('worker-a', 1)), '00000000-0000-4000-8000-000000000002'::uuid,
          '2nd tied claim: the next id');
select is((select id from queue.claim_jobs('worker-a', 1)), '00000000-0000-4000-8000-000000000003'::uuid,
          '3rd tied claim: the largest id, though inserted first');

select * from finish();
rollback;
