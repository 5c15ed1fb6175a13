begin;
select plan(10);

delete from public.generation_jobs;   -- count from a known state (rolled back)
select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'claimable, waiting 5 minutes') as oldest \gset
update public.generation_jobs set created_at = now() - interval '5 minutes' where id = :'oldest';
select tests.make_job('alice', 'claimable') as claimable \gset
select tests.make_job('alice', 'backing off', 0::smallint, now() + interval '1 minute') as backing_off \gset
update public.generation_jobs set created_at = now() - interval '1 hour' where id = :'backing_off';
select tests.make_running_job('alice', 'worker-a', 60, 1) as running \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded_now \gset
select tests.make_finished_job('alice', 'succeeded', now() - interval '2 hours') as succeeded_earlier \gset
select tests.make_finished_job('alice', 'succeeded', now() - interval '2 days') as succeeded_long_ago \gset
select tests.make_finished_job('alice', 'failed', now() - interval '30 minutes') as failed \gset
select tests.make_finished_job('alice', 'canceled') as canceled \gset
update public.generation_jobs set gpu_seconds = 10, cost_usd = 0.01 where id = :'succeeded_now';
update public.generation_jobs set gpu_seconds = 5.5, cost_usd = 0.005 where id = :'succeeded_earlier';
update public.generation_jobs set gpu_seconds = 100, cost_usd = 1 where id = :'succeeded_long_ago';

-- TEST: exact counts of the active jobs; the finished ones counted over the last 24 h only
select results_eq($$select queued, running, succeeded_last_24h, failed_last_24h, canceled_last_24h
                    from queue.job_stats$$,
                  $$values (3::bigint, 1::bigint, 2::bigint, 1::bigint, 1::bigint)$$,
                  'queued 3, running 1; in the last 24 h succeeded 2 (not the one 2 days ago), failed 1, canceled 1');

-- TEST: the window is the last 24 hours, like the cost: a job finished 23 h ago counts, 25 h ago does not
update public.generation_jobs set finished_at = now() - interval '23 hours' where id = :'failed';
update public.generation_jobs set finished_at = now() - interval '25 hours' where id = :'canceled';
select results_eq($$select failed_last_24h, canceled_last_24h from queue.job_stats$$,
                  $$values (1::bigint, 0::bigint)$$, 'failed 23 h ago counts, canceled 25 h ago does not');
update public.generation_jobs set finished_at = now() - interval '30 minutes' where id = :'failed';
update public.generation_jobs set finished_at = now() where id = :'canceled';

-- TEST: queued and running are exact whatever their age: a job queued or running for days still counts
update public.generation_jobs set created_at = now() - interval '3 days' where id in (:'backing_off', :'running');
select results_eq($$select queued, running from queue.job_stats$$, $$values (3::bigint, 1::bigint)$$,
                  'queued 3 and running 1, created 3 days ago or not');

-- TEST: claimable counts queued jobs that are due, not those backing off
select is((select claimable from queue.job_stats), 2::bigint, 'claimable is 2 of the 3 queued');

-- TEST: the oldest claimable job's age ignores jobs backing off (which were created earlier)
select is((select oldest_claimable_age_seconds from queue.job_stats), 300::numeric,
          'oldest_claimable_age_seconds is 300');

-- TEST: throughput and cost windows
select is((select finished_last_hour from queue.job_stats), 3::bigint,
          'finished_last_hour counts the jobs finished now and 30 minutes ago');
select is((select gpu_seconds_last_24h from queue.job_stats)::numeric, 15.5, 'gpu_seconds_last_24h is 10 + 5.5');
select is((select cost_usd_last_24h from queue.job_stats), 0.015::numeric, 'cost_usd_last_24h is 0.01 + 0.005');

-- TEST: an empty queue answers zeros, not nulls
delete from public.generation_jobs;
select results_eq($$select queued, claimable, running, succeeded_last_24h, failed_last_24h, canceled_last_24h,
                           finished_last_hour,
                           gpu_seconds_last_24h::numeric, cost_usd_last_24h from queue.job_stats$$,
                  $$values (0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
                            0::numeric, 0::numeric)$$,
                  'all counts and sums are 0');
select is((select oldest_claimable_age_seconds from queue.job_stats), null,
          'oldest_claimable_age_seconds is null without a claimable job');

select * from finish();
rollback;
