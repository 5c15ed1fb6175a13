begin;
select plan(5);

-- TEST: the queue API exists with the contract signatures (later migrations may add more, e.g. trigger functions)
select set_has(
  $$select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'queue'::regnamespace$$,
  $$select unnest(array['queue.claim_jobs(text,integer,integer)',
        'queue.renew_leases(text,uuid[],integer[],integer)',
        'queue.report_progress(text,uuid,integer,real)',
        'queue.complete_jobs(text,jsonb)',
        'queue.retry_delay(integer,double precision,double precision)',
        'queue.fail_job(text,uuid,integer,text,text,boolean)',
        'queue.acknowledge_cancel(text,uuid,integer)',
        'queue.release_jobs(text,uuid[],integer[])',
        'queue.reap_expired_leases(integer)',
        'queue.requeue_job(uuid,boolean)',
        'queue.request_cancel(uuid)',
        'queue.cancel_job(uuid)',
        'queue.purge_finished_jobs(interval,integer)'])$$,
  'queue has the thirteen contract functions');

-- TEST: every function that writes jobs runs as its owner with an empty search_path
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'queue'::regnamespace and p.proname <> 'retry_delay'
      and not (p.prosecdef and p.proconfig @> array['search_path=""'])$$,
  'all queue functions but retry_delay are security definer with search_path = ''''');
select ok((select not prosecdef and proconfig @> array['search_path=""'] and provolatile = 'v'
           from pg_proc where oid = 'queue.retry_delay(integer, double precision, double precision)'::regprocedure),
          'retry_delay is security invoker, volatile (jitter), with an empty search_path');

-- TEST: the return types the worker relies on
select results_eq(
  $$select p.proname::text collate "default", pg_get_function_result(p.oid) collate "default"
    from pg_proc p
    where p.pronamespace = 'queue'::regnamespace and p.prorettype <> 'trigger'::regtype order by p.proname$$,
  $$values ('acknowledge_cancel', 'boolean'), ('cancel_job', 'text'),
           ('claim_jobs', 'SETOF generation_jobs'),
           ('claim_storage_deletions', 'TABLE(id bigint, object_key text)'),
           ('complete_jobs', 'SETOF uuid'), ('fail_job', 'text'),
           ('finish_cost_alert', 'boolean'), ('finish_storage_deletions', 'integer'),
           ('purge_finished_jobs', 'TABLE(job_id uuid, object_key text)'),
           ('reap_expired_leases', 'integer'), ('record_backend_call', 'boolean'),
           ('record_cost_alert', 'TABLE(day date, cost_usd numeric, gpu_seconds numeric, attempt integer)'),
           ('release_jobs', 'integer'),
           ('renew_leases', 'TABLE(job_id uuid, cancel_requested boolean)'), ('report_progress', 'boolean'),
           ('request_cancel', 'text'), ('requeue_job', 'text'), ('resign_lead', 'boolean'),
           ('retry_delay', 'interval'), ('try_lead', 'boolean')$$,
  'each queue function returns what the worker expects');

-- TEST: every queue function a caller can call documents itself
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'queue'::regnamespace and p.prorettype <> 'trigger'::regtype
      and obj_description(p.oid, 'pg_proc') is null$$,
  'every callable queue function has a comment');

select * from finish();
rollback;
