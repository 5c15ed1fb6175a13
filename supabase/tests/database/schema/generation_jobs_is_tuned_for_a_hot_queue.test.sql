begin;
select plan(5);

-- TEST: room for HOT updates and aggressive autovacuum on the queue table
select set_eq(
  $$select unnest(reloptions) from pg_class where oid = 'public.generation_jobs'::regclass$$,
  array['fillfactor=70', 'autovacuum_vacuum_scale_factor=0.01', 'autovacuum_vacuum_threshold=200',
        'autovacuum_analyze_scale_factor=0.02', 'autovacuum_vacuum_cost_delay=0'],
  'fillfactor 70, vacuum at 1% + 200 rows, analyze at 2%, no vacuum cost delay');

-- TEST: the columns written on every lease renewal and progress report are in no index, so those writes
-- stay HOT updates
select is_empty(
  $$select i.indexrelid::regclass::text, a.attname::text
    from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
    where i.indrelid = 'public.generation_jobs'::regclass
      and a.attname in ('lease_expires_at', 'progress', 'updated_at')
    union all
    select i.indexrelid::regclass::text, 'expression or predicate'
    from pg_index i
    where i.indrelid = 'public.generation_jobs'::regclass
      and (pg_get_expr(i.indexprs, i.indrelid) ~ '(lease_expires_at|progress|updated_at)'
           or pg_get_expr(i.indpred, i.indrelid) ~ '(lease_expires_at|progress|updated_at)')$$,
  'no index on lease_expires_at, progress or updated_at');

-- TEST: the indexes the queue functions rely on exist as partial indexes
select is(pg_get_indexdef('public.generation_jobs_running_idx'::regclass),
          'CREATE INDEX generation_jobs_running_idx ON public.generation_jobs USING btree (locked_by) '
          'WHERE (status = ''running''::text)',
          'running jobs are indexed by worker for the reaper and lease renewals');
select is(pg_get_indexdef('public.generation_jobs_finished_at_idx'::regclass),
          'CREATE INDEX generation_jobs_finished_at_idx ON public.generation_jobs USING btree (finished_at) '
          'WHERE (finished_at IS NOT NULL)',
          'finished jobs are indexed by finished_at for the retention purge');

-- TEST: a lease renewal is a HOT update
select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset
select n_tup_hot_upd as hot_before from pg_stat_xact_user_tables where relid = 'public.generation_jobs'::regclass \gset
select count(*) as renewed from queue.renew_leases('worker-a', array[:'job']::uuid[], array[1], 120) \gset
select cmp_ok((select n_tup_hot_upd from pg_stat_xact_user_tables where relid = 'public.generation_jobs'::regclass),
              '>', :'hot_before'::bigint, 'renew_leases updated the row in place (HOT)');

select * from finish();
rollback;
