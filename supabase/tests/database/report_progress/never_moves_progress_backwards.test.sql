begin;
select plan(6);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as job \gset

-- TEST: progress moves forward
select is(queue.report_progress('worker-a', :'job', 1, 0.5), true, 'reporting 0.5 answers true');
select is((select progress from public.generation_jobs where id = :'job'), 0.5::real, 'progress is 0.5');

-- TEST: a lower value (a late or reordered report) is accepted but does not move progress back
select is(queue.report_progress('worker-a', :'job', 1, 0.25), true, 'reporting 0.25 still answers true');
select is((select progress from public.generation_jobs where id = :'job'), 0.5::real, 'progress stays at 0.5');

-- TEST: and forward again
select is(queue.report_progress('worker-a', :'job', 1, 0.75), true, 'reporting 0.75 answers true');
select is((select progress from public.generation_jobs where id = :'job'), 0.75::real, 'progress is 0.75');

select * from finish();
rollback;
