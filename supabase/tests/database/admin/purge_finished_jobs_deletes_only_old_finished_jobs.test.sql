begin;
select plan(11);

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

-- the keys every purged job's image has, computed while the rows exist
create temporary table keys on commit drop as
  select id, tests.result_path_for(id) as object_key from public.generation_jobs;
create temporary table old_ids on commit drop as
  select unnest(array[:'old_succeeded', :'old_failed', :'old_canceled']::uuid[]) as id;

-- TEST: with the default of 30 days, finished jobs older than that are deleted, each with its image key queued
-- (failed and canceled too: a requeued job may have left an image of an earlier run; result_path is not read)
select set_eq($$select job_id, object_key from queue.purge_finished_jobs()$$,
              $$select id, object_key from keys where id in (select id from old_ids)$$,
              'the three old finished jobs are purged, each with its key <user_id>/<job_id>.png');
select is((select count(*)::int from public.generation_jobs where id in (:'old_succeeded', :'old_failed', :'old_canceled')),
          0, 'they are gone');

-- TEST: the same transaction queued their images in the Storage deletion outbox
select set_eq($$select job_id, bucket, object_key from queue.storage_deletions$$,
              $$select id, 'generated-designs'::text, object_key from keys where id in (select id from old_ids)$$,
              'one outbox row per purged job, in bucket generated-designs');

-- TEST: a drain claims them once and removes what it finished
select is((select count(*)::int from queue.claim_storage_deletions('generated-designs', 10)), 3, 'claimed 3');
select is_empty($$select * from queue.claim_storage_deletions('generated-designs', 10)$$,
                'claimed rows are held from other drainers');
select is(queue.finish_storage_deletions(array(select id from queue.storage_deletions)), 3,
          'finishing without an error removes the rows');

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
select results_eq($$select job_id, object_key from queue.purge_finished_jobs(interval '7 days')$$,
                  format('select id, object_key from keys where id = %L', :'recent_succeeded'),
                  'older_than 7 days purges the 10-day-old job');
select is((select count(*)::int from public.generation_jobs), 2, 'only the queued and running jobs remain');

-- TEST: nothing left to purge answers an empty set
select is_empty($$select * from queue.purge_finished_jobs(interval '0 seconds')$$,
                'live jobs are never purged, even with a zero retention');

select * from finish();
rollback;
