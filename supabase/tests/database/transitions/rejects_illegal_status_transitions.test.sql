begin;
select plan(16);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'queued') as queued \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded \gset
select tests.make_finished_job('alice', 'failed') as failed \gset
select tests.make_finished_job('alice', 'canceled') as canceled \gset
select tests.job_snapshot(:'queued') as queued_before \gset
select tests.job_snapshot(:'succeeded') as succeeded_before \gset
select tests.job_snapshot(:'failed') as failed_before \gset
select tests.job_snapshot(:'canceled') as canceled_before \gset

-- Each update sets the columns the target status requires (tests.update_status), so only the transition
-- trigger can object: 23514 with `status: illegal transition from X to Y for job <id>`.

-- TEST: a queued job cannot finish without running
select throws_ok(format($$select tests.update_status(%L, 'succeeded')$$, :'queued'), '23514',
                 format('status: illegal transition from queued to succeeded for job %s', :'queued'),
                 'queued -> succeeded is illegal');
select throws_ok(format($$select tests.update_status(%L, 'failed')$$, :'queued'), '23514',
                 format('status: illegal transition from queued to failed for job %s', :'queued'),
                 'queued -> failed is illegal');

-- TEST: a succeeded job can only be requeued
select throws_ok(format($$select tests.update_status(%L, 'running')$$, :'succeeded'), '23514',
                 format('status: illegal transition from succeeded to running for job %s', :'succeeded'),
                 'succeeded -> running is illegal');
select throws_ok(format($$select tests.update_status(%L, 'failed')$$, :'succeeded'), '23514',
                 format('status: illegal transition from succeeded to failed for job %s', :'succeeded'),
                 'succeeded -> failed is illegal');
select throws_ok(format($$select tests.update_status(%L, 'canceled')$$, :'succeeded'), '23514',
                 format('status: illegal transition from succeeded to canceled for job %s', :'succeeded'),
                 'succeeded -> canceled is illegal');

-- TEST: a failed job can only be requeued
select throws_ok(format($$select tests.update_status(%L, 'running')$$, :'failed'), '23514',
                 format('status: illegal transition from failed to running for job %s', :'failed'),
                 'failed -> running is illegal');
select throws_ok(format($$select tests.update_status(%L, 'succeeded')$$, :'failed'), '23514',
                 format('status: illegal transition from failed to succeeded for job %s', :'failed'),
                 'failed -> succeeded is illegal');
select throws_ok(format($$select tests.update_status(%L, 'canceled')$$, :'failed'), '23514',
                 format('status: illegal transition from failed to canceled for job %s', :'failed'),
                 'failed -> canceled is illegal');

-- TEST: a canceled job can only be requeued
select throws_ok(format($$select tests.update_status(%L, 'running')$$, :'canceled'), '23514',
                 format('status: illegal transition from canceled to running for job %s', :'canceled'),
                 'canceled -> running is illegal');
select throws_ok(format($$select tests.update_status(%L, 'succeeded')$$, :'canceled'), '23514',
                 format('status: illegal transition from canceled to succeeded for job %s', :'canceled'),
                 'canceled -> succeeded is illegal');
select throws_ok(format($$select tests.update_status(%L, 'failed')$$, :'canceled'), '23514',
                 format('status: illegal transition from canceled to failed for job %s', :'canceled'),
                 'canceled -> failed is illegal');

-- TEST: an unknown status is an illegal transition too (the trigger runs before status_is_valid)
select throws_ok(format($$update public.generation_jobs set status = 'paused' where id = %L$$, :'queued'), '23514',
                 format('status: illegal transition from queued to paused for job %s', :'queued'),
                 'queued -> paused is illegal');

-- TEST: a bare status change is refused by the trigger before any CHECK sees the inconsistent row
select throws_ok(format($$update public.generation_jobs set status = 'succeeded' where id = %L$$, :'queued'), '23514',
                 format('status: illegal transition from queued to succeeded for job %s', :'queued'),
                 'a bare queued -> succeeded update names the transition, not a CHECK');

-- TEST: every refused update left its row as it was
select is(tests.job_snapshot(:'queued'), :'queued_before'::jsonb, 'the queued job is unchanged');
select is(tests.job_snapshot(:'succeeded'), :'succeeded_before'::jsonb, 'the succeeded job is unchanged');
select ok(tests.job_snapshot(:'failed') = :'failed_before'::jsonb
          and tests.job_snapshot(:'canceled') = :'canceled_before'::jsonb,
          'the failed and canceled jobs are unchanged');

select * from finish();
rollback;
