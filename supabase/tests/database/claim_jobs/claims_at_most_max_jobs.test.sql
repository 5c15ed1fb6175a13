begin;
select plan(7);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'one') as one \gset
select tests.make_job('alice', 'two') as two \gset
select tests.make_job('alice', 'three') as three \gset

-- TEST: max_jobs = 0 (a worker with no free slot) claims nothing
select is_empty($$select * from queue.claim_jobs('worker-a', 0)$$, 'max_jobs 0 claims nothing');
-- TEST: a negative max_jobs is treated as 0
select is_empty($$select * from queue.claim_jobs('worker-a', -3)$$, 'negative max_jobs claims nothing');
select is((select count(*)::int from public.generation_jobs where status = 'queued'), 3, 'all three still queued');

-- TEST: max_jobs caps the batch
select is((select count(*)::int from queue.claim_jobs('worker-a', 2)), 2, 'max_jobs 2 claims exactly 2');
select is((select count(*)::int from public.generation_jobs where status = 'queued'), 1, 'one job is left queued');

-- TEST: asking for more than there is claims what is left
select is((select count(*)::int from queue.claim_jobs('worker-b', 10)), 1, 'max_jobs 10 claims the last one');
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'an empty queue claims nothing');

select * from finish();
rollback;
