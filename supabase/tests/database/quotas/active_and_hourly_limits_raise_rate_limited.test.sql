begin;
select plan(9);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
-- the default row: 3 active jobs, 30 per hour
update queue.quota_limits set max_active_jobs = 3, max_jobs_per_hour = 30 where user_id is null;

select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt) values ('one'), ('two'), ('three');

-- TEST: the 4th active job is refused with PT429 rate_limited, and creates nothing
select throws_ok($$insert into public.generation_jobs (prompt) values ('four')$$, 'PT429',
                 'rate_limited: at most 3 active jobs per user (you have 3)',
                 'a 4th active job is rate limited');
select is((select count(*)::integer from public.generation_jobs), 3, 'the refused insert created no row');

-- TEST: a multi-row insert is counted row by row
reset role;
delete from public.generation_jobs;
select tests.authenticate_as('alice');
select throws_ok($$insert into public.generation_jobs (prompt) values ('a'), ('b'), ('c'), ('d')$$, 'PT429',
                 'rate_limited: at most 3 active jobs per user (you have 3)',
                 'one statement inserting 4 jobs is refused as a whole');

-- TEST: other users are not affected
select tests.authenticate_as('bob');
select lives_ok($$insert into public.generation_jobs (prompt) values ('bob 1')$$, 'bob still may insert');

-- TEST: finished jobs free the active slots, but the hourly limit still counts them
reset role;
update queue.quota_limits set max_jobs_per_hour = 4 where user_id is null;
insert into public.generation_jobs (user_id, prompt, status, finished_at)
select tests.get_supabase_uid('alice'), 'done ' || g, 'queued'::text, null::timestamptz from generate_series(1, 3) g;
update public.generation_jobs set status = 'canceled', finished_at = now()
 where user_id = tests.get_supabase_uid('alice');
select tests.authenticate_as('alice');
select lives_ok($$insert into public.generation_jobs (prompt) values ('fourth this hour')$$,
                'finished jobs do not count as active');
select throws_ok($$insert into public.generation_jobs (prompt) values ('fifth this hour')$$, 'PT429',
                 'rate_limited: at most 4 jobs per hour per user', 'the hourly limit counts every job');

-- TEST: a per-user row overrides the default
reset role;
insert into queue.quota_limits (user_id, max_active_jobs, max_jobs_per_hour)
values (tests.get_supabase_uid('alice'), 10, 100);
select tests.authenticate_as('alice');
select lives_ok($$insert into public.generation_jobs (prompt) values ('vip')$$, 'a per-user limit overrides the default');

-- TEST: admins are not rate limited; clients cannot read the limits
reset role;
update queue.quota_limits set max_active_jobs = 0;
select lives_ok(format($$insert into public.generation_jobs (user_id, prompt) values (%L, 'admin')$$,
                       tests.get_supabase_uid('alice')), 'an admin insert ignores quotas');
select tests.authenticate_as('alice');
select throws_ok($$select * from queue.quota_limits$$, '42501', 'permission denied for schema queue',
                 'clients cannot read the quota table');

select * from finish();
rollback;
