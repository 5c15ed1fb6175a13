begin;
select plan(6);

-- TEST: the claim index covers exactly the (total) claim order, over queued rows only
select is(pg_get_indexdef('public.generation_jobs_claimable_idx'::regclass),
          'CREATE INDEX generation_jobs_claimable_idx ON public.generation_jobs USING btree '
          '(priority DESC, run_after, created_at, id) WHERE (status = ''queued''::text)',
          'generation_jobs_claimable_idx is (priority desc, run_after, created_at, id) where status = queued');

-- The candidate query is read from queue.claim_jobs itself (its `candidates` CTE), so this test follows the
-- function if it changes; max_jobs is bound to 10 to EXPLAIN it outside the function.
create function pg_temp.claim_candidates_query() returns text language sql as $$
  select regexp_replace(
           substring(p.prosrc from 'candidates as materialized \([^\n]*\n(.*?for update skip locked)'),
           '\mmax_jobs\M', '10', 'g')
  from pg_proc p where p.oid = 'queue.claim_jobs(text, integer, integer)'::regprocedure
$$;
create function pg_temp.claim_candidates_plan() returns jsonb language plpgsql as $$
declare
  v_plan json;
  v_setting text;
begin
  -- plan it under the settings of claim_jobs itself (hash and merge joins off; not its empty search_path, which
  -- the qualified query does not need and pgTAP would not survive)
  foreach v_setting in array (select p.proconfig from pg_proc p
                              where p.oid = 'queue.claim_jobs(text, integer, integer)'::regprocedure) loop
    if split_part(v_setting, '=', 1) <> 'search_path' then
      perform set_config(split_part(v_setting, '=', 1), split_part(v_setting, '=', 2), true);
    end if;
  end loop;
  execute 'explain (format json) ' || pg_temp.claim_candidates_query() into v_plan;
  return v_plan::jsonb;
end;
$$;

-- TEST: the query was found in the function
select matches(pg_temp.claim_candidates_query(),
               '^\s*select j\.id\s+from public\.generation_jobs j\s+where j\.status = ''queued''.*order by j\.priority desc, j\.run_after, j\.created_at, j\.id\s+limit .*for update skip locked$',
               'the candidate query of claim_jobs was extracted');

-- A realistic table (all rolled back): a backlog of 1000 queued jobs at three priorities among 5000 finished
-- ones, with fresh statistics. (With only a handful of queued rows the planner may as well sort them in
-- memory; the index matters, and is chosen, once there is a backlog.)
select tests.create_supabase_user('alice') as alice \gset
insert into public.generation_jobs (user_id, prompt, width, height, status, attempts, finished_at, error_code,
                                    created_at, run_after)
select tests.get_supabase_uid('alice'), 'old ' || n, 512, 512, 'failed', 1, now() - n * interval '1 minute',
       'test_error', now() - n * interval '1 minute', now() - n * interval '1 minute'
from generate_series(1, 5000) as n;
insert into public.generation_jobs (user_id, prompt, width, height, priority, created_at, run_after)
select tests.get_supabase_uid('alice'), 'backlog ' || n, 512, 512, (n % 3)::smallint,
       now() - n * interval '1 second', now() - n * interval '1 second'
from generate_series(1, 1000) as n;
analyze public.generation_jobs;

-- TEST: with the planner's own choices, the claim query scans the partial claim index
select ok(pg_temp.claim_candidates_plan() @? '$.** ? (@."Index Name" == "generation_jobs_claimable_idx")',
          'the claim query plan uses generation_jobs_claimable_idx');
select ok(not (pg_temp.claim_candidates_plan() @? '$.** ? (@."Node Type" == "Seq Scan")'),
          'the claim query plan has no sequential scan');

-- TEST: the index delivers the claim order, id included: no sort step before the LIMIT
select ok(not (pg_temp.claim_candidates_plan() @? '$.** ? (@."Node Type" == "Sort")'),
          'the claim query plan has no Sort node');

-- TEST: rows are locked (FOR UPDATE SKIP LOCKED) under the limit
select ok(pg_temp.claim_candidates_plan() @? '$.** ? (@."Node Type" == "LockRows")',
          'the claim query plan locks the candidate rows');

select * from finish();
rollback;
