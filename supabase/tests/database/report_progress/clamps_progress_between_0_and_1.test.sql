begin;
select plan(6);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset

-- TEST: a negative report is clamped to 0 (no check violation)
select is(queue.report_progress('worker-a', :'job', 1, -0.5), true, 'reporting -0.5 answers true');
select is((select progress from public.generation_jobs where id = :'job'), 0::real, 'progress is clamped to 0');

-- TEST: a report above 1 is clamped to 1 (no check violation)
select is(queue.report_progress('worker-a', :'job', 1, 1.7), true, 'reporting 1.7 answers true');
select is((select progress from public.generation_jobs where id = :'job'), 1::real, 'progress is clamped to 1');

-- TEST: the row stays running: progress 1 does not complete the job
select is((select status from public.generation_jobs where id = :'job'), 'running', 'the job is still running');

-- TEST: a null report leaves progress as it was
select is((select progress from public.generation_jobs
           where id = :'job' and queue.report_progress('worker-a', :'job', 1, null) is not null), 1::real,
          'a null report leaves progress at 1');

select * from finish();
rollback;
