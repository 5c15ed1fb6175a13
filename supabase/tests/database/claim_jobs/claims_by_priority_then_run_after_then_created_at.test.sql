begin;
select plan(8);

select tests.create_supabase_user('alice') as alice \gset
-- five claimable jobs whose claim order is fixed by priority desc, then run_after, then created_at
select tests.make_job('alice', 'low priority, oldest run_after', 0::smallint, now() - interval '10 minutes') as low \gset
select tests.make_job('alice', 'high priority, later run_after', 5::smallint, now() - interval '1 minute') as high_late \gset
select tests.make_job('alice', 'high priority, earlier run_after', 5::smallint, now() - interval '5 minutes') as high_early \gset
select tests.make_job('alice', 'mid priority, created later', 1::smallint, now() - interval '2 minutes') as mid_late \gset
select tests.make_job('alice', 'mid priority, created earlier', 1::smallint, now() - interval '2 minutes') as mid_early \gset
update public.generation_jobs set created_at = now() - interval '1 minute' where prompt = 'mid priority, created later';
update public.generation_jobs set created_at = now() - interval '3 minutes' where prompt = 'mid priority, created earlier';

-- TEST: a batch claim takes the head of the queue
select set_eq(
  $$select prompt from queue.claim_jobs('worker-batch', 2)$$,
  array['high priority, earlier run_after', 'high priority, later run_after'],
  'a batch of 2 claims the two highest-priority jobs');
select is((select count(*)::int from public.generation_jobs where status = 'queued'), 3,
          'the other three stay queued');

-- back to the queue, one claim at a time from here
select is(queue.release_jobs('worker-batch', array(select id from public.generation_jobs where status = 'running'),
                             array(select attempts from public.generation_jobs where status = 'running')),
          2, 'the batch is released');

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

select * from finish();
rollback;
