-- public.generation_job_queue_position without the jobs that are backing off.
--
-- Why: the position counted every queued job that sorts ahead of yours in claim order, including higher-priority
-- jobs waiting out a retry backoff (run_after in the future). queue.claim_jobs only takes jobs whose run_after has
-- passed, so such a job is not ahead of yours while it waits: a user behind a failing high-priority job was told
-- a position that did not move.
--
-- What changes: the position is the one your job will have when it becomes claimable, that is
-- greatest(now(), your run_after). A job counts as ahead of yours when it is queued, will be claimable by then
-- (its run_after <= that moment), and comes first in the order of queue.claim_jobs (priority desc, run_after,
-- created_at, id). Jobs of your own priority that come first already have an earlier run_after, so only
-- higher-priority jobs that are still backing off at that moment drop out. Signature, owner, grants and the
-- null for a job that is not queued (or not yours) are unchanged.

create or replace function public.generation_job_queue_position(job_id uuid)
returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select 1 + (
    select count(*)::integer from public.generation_jobs o
    where o.status = 'queued'
      and o.run_after <= greatest(now(), j.run_after)
      and (o.priority > j.priority
           or (o.priority = j.priority
               and (o.run_after, o.created_at, o.id) < (j.run_after, j.created_at, j.id))))
  from public.generation_jobs j
  where j.id = generation_job_queue_position.job_id
    and j.user_id = (select auth.uid())
    and j.status = 'queued'
$$;

comment on function public.generation_job_queue_position(uuid) is
  'Client RPC: 1-based position of your queued job in claim order (priority desc, run_after, created_at, id: '
  'the order of queue.claim_jobs) at the moment it becomes claimable; jobs still backing off then are not ahead '
  'of it (20261125001500). Null when it is not queued (or not yours).';
