begin;
select plan(7);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_finished_job('alice', 'succeeded', now() - interval '40 days') as old_succeeded \gset
select tests.make_finished_job('alice', 'failed', now() - interval '35 days') as old_failed \gset
select tests.make_finished_job('alice', 'canceled', now() - interval '31 days') as old_canceled \gset
select tests.make_finished_job('alice', 'succeeded', now() - interval '10 days') as recent_succeeded \gset
select tests.make_finished_job('alice', 'failed', now() - interval '29 days') as recent_failed \gset
select tests.make_job('alice', 'queued for ages') as old_queued \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as old_running \gset
update public.generation_jobs set created_at = now() - interval '90 days', run_after = now() - interval '90 days'
 where id in (:'old_queued', :'old_running');

-- TEST: with the default of 30 days, finished jobs older than that are deleted and their result paths returned
select set_eq($$select job_id, result_path from queue.purge_finished_jobs()$$,
              format('values (%L::uuid, %L::text), (%L::uuid, null::text), (%L::uuid, null::text)',
                     :'old_succeeded', tests.result_path_for(:'old_succeeded'), :'old_failed', :'old_canceled'),
              'the three old finished jobs are purged; only the succeeded one has a result path');
select is((select count(*)::int from public.generation_jobs where id in (:'old_succeeded', :'old_failed', :'old_canceled')),
          0, 'they are gone');

-- TEST: recent finished jobs and live jobs, however old, stay
select set_eq($$select id from public.generation_jobs$$,
              format('values (%L::uuid), (%L::uuid), (%L::uuid), (%L::uuid)',
                     :'recent_succeeded', :'recent_failed', :'old_queued', :'old_running'),
              'recent finished jobs and queued/running jobs remain');

-- TEST: max_jobs caps one pass, oldest finished first
select results_eq($$select job_id from queue.purge_finished_jobs(interval '1 day', 1)$$,
                  format('values (%L::uuid)', :'recent_failed'),
                  'max_jobs 1 purges the oldest finished job first');

-- TEST: a shorter retention purges the rest of the finished jobs
select results_eq($$select job_id, result_path from queue.purge_finished_jobs(interval '7 days')$$,
                  format('values (%L::uuid, %L::text)', :'recent_succeeded', tests.result_path_for(:'recent_succeeded')),
                  'older_than 7 days purges the 10-day-old job');
select is((select count(*)::int from public.generation_jobs), 2, 'only the queued and running jobs remain');

-- TEST: nothing left to purge answers an empty set
select is_empty($$select * from queue.purge_finished_jobs(interval '0 seconds')$$,
                'live jobs are never purged, even with a zero retention');

select * from finish();
rollback;
