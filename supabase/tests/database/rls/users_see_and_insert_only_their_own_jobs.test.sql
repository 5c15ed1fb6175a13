begin;
select plan(12);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select tests.make_job('bob', 'bob''s design');

-- TEST: RLS is on for every table a client can reach
select ok((select relrowsecurity from pg_class where oid = 'public.generation_jobs'::regclass),
          'generation_jobs has row level security enabled');
select ok((select relrowsecurity from pg_class where oid = 'public.generation_styles'::regclass),
          'generation_styles has row level security enabled');

select tests.authenticate_as('alice');

-- TEST: a client insert takes the caller's id and comes back queued
select lives_ok($$insert into public.generation_jobs (prompt, width, height) values ('alice''s dragon', 512, 512)$$,
                'alice inserts a job with only request columns');
select results_eq($$select user_id, status from public.generation_jobs$$,
                  $$values (tests.get_supabase_uid('alice'), 'queued'::text)$$,
                  'alice sees exactly her own job, queued, owned by her');

-- TEST: another user's rows are invisible and untouchable
select is_empty($$select 1 from public.generation_jobs where prompt = 'bob''s design'$$,
                'alice cannot read bob''s job');
select throws_ok($$update public.generation_jobs set prompt = 'x' where prompt = 'bob''s design'$$,
                 '42501', 'permission denied for table generation_jobs', 'clients cannot update jobs at all');
select throws_ok($$delete from public.generation_jobs$$,
                 '42501', 'permission denied for table generation_jobs', 'clients cannot delete jobs');

-- TEST: a forged user_id is refused (the column is not insertable)
select throws_ok(format($$insert into public.generation_jobs (user_id, prompt) values (%L, 'forged')$$,
                        tests.get_supabase_uid('bob')),
                 '42501', 'permission denied for table generation_jobs', 'alice cannot insert a job for bob');

select tests.authenticate_as('bob');
select results_eq($$select prompt from public.generation_jobs$$, $$values ('bob''s design'::text)$$,
                  'bob sees only his job');

select tests.clear_authentication();
-- TEST: anon gets nothing but the styles
select throws_ok($$select * from public.generation_jobs$$, '42501',
                 'permission denied for table generation_jobs', 'anon cannot read jobs');
select throws_ok($$insert into public.generation_jobs (prompt) values ('anon')$$, '42501',
                 'permission denied for table generation_jobs', 'anon cannot insert jobs');
select ok((select count(*) from public.generation_styles) >= 5, 'anon reads the style list');

select * from finish();
rollback;
