begin;
select plan(7);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
-- Three jobs equal on priority, run_after and created_at (one statement: created_at = now() for all), inserted
-- in descending id order so that physical order is the reverse of id order; bob's tied job sits between them.
insert into public.generation_jobs (id, user_id, prompt, priority, run_after, width, height)
select ('00000000-0000-4000-8000-00000000000' || n)::uuid,
       tests.get_supabase_uid(case when n = 2 then 'bob' else 'alice' end), 'tied ' || n,
       0::smallint, now() - interval '1 minute', 512, 512
from generate_series(3, 1, -1) as n;
select is((select count(distinct (priority, run_after, created_at))::int from public.generation_jobs
           where prompt like 'tied %'), 1, 'the three jobs are equal on priority, run_after and created_at');

-- TEST: position counts the tied jobs ahead in id order, the order queue.claim_jobs claims them in
select tests.authenticate_as('alice');
select is(public.generation_job_queue_position('00000000-0000-4000-8000-000000000001'), 1,
          'the smallest id is first, though inserted last');
select is(public.generation_job_queue_position('00000000-0000-4000-8000-000000000003'), 3,
          'the largest id is third, behind bob''s tied job');

-- TEST: the claim takes the job at position 1, and every position behind it moves up by one
reset role;
select is((select id from queue.claim_jobs('worker-a', 1)), '00000000-0000-4000-8000-000000000001'::uuid,
          'the claim takes the job that was at position 1');
select tests.authenticate_as('alice');
select is(public.generation_job_queue_position('00000000-0000-4000-8000-000000000003'), 2,
          'the last job moves up to 2');
reset role;
select is((select id from queue.claim_jobs('worker-a', 1)), '00000000-0000-4000-8000-000000000002'::uuid,
          'the next claim takes bob''s job, the one ahead of alice''s');
select tests.authenticate_as('alice');
select is(public.generation_job_queue_position('00000000-0000-4000-8000-000000000003'), 1,
          'the last job is now first');

select * from finish();
rollback;
