begin;
select plan(5);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
-- bob's urgent job failed an attempt and backs off for 5 minutes; alice's jobs are ready now or back off longer
select set_config('tests.b_retry', tests.make_job('bob', 'b retry', 5::smallint, now() + interval '5 minutes')::text, true);
select set_config('tests.b_ready', tests.make_job('bob', 'b ready', 0::smallint, now() - interval '2 minutes')::text, true);
select set_config('tests.a_ready', tests.make_job('alice', 'a ready', 0::smallint, now() - interval '1 minute')::text, true);
select set_config('tests.a_later', tests.make_job('alice', 'a later', 0::smallint, now() + interval '10 minutes')::text, true);

select tests.authenticate_as('alice');
-- TEST: a higher-priority job that is backing off is not ahead of a job claimable now
select is(public.generation_job_queue_position(current_setting('tests.a_ready')::uuid), 2,
          'only the ready job of the same priority that came first is ahead');
-- TEST: a job that is itself backing off is behind everything claimable by the time its wait is over
select is(public.generation_job_queue_position(current_setting('tests.a_later')::uuid), 4,
          'the retrying urgent job, ready before this one, is ahead of it, as are both ready jobs');

-- TEST: the position agrees with the claim: the ready jobs are claimed first, in the order the positions gave
reset role;
select is((select array_agg(prompt order by prompt) from public.generation_jobs
           where id in (select id from queue.claim_jobs('worker-a', 2))),
          array['a ready', 'b ready'], 'claim_jobs takes the two ready jobs and skips the one backing off');

-- TEST: once its backoff is over, the urgent job goes first again
update public.generation_jobs set run_after = now() - interval '1 second' where prompt = 'b retry';
select tests.authenticate_as('alice');
select is(public.generation_job_queue_position(current_setting('tests.a_later')::uuid), 2,
          'the urgent job, ready now, is ahead of the job still backing off');
select tests.authenticate_as('bob');
select is(public.generation_job_queue_position(current_setting('tests.b_retry')::uuid), 1,
          'and at the head of the queue for its owner');

select * from finish();
rollback;
