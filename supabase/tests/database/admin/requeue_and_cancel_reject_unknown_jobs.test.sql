begin;
select plan(2);

select gen_random_uuid() as unknown \gset

-- TEST: requeue_job of an id that does not exist raises no_data_found naming the id
select throws_ok(format('select queue.requeue_job(%L)', :'unknown'), 'P0002', format('job_id: no job %s', :'unknown'),
                 'requeue_job of an unknown id raises P0002');

-- TEST: cancel_job of an id that does not exist raises no_data_found naming the id
select throws_ok(format('select queue.cancel_job(%L)', :'unknown'), 'P0002', format('job_id: no job %s', :'unknown'),
                 'cancel_job of an unknown id raises P0002');

select * from finish();
rollback;
