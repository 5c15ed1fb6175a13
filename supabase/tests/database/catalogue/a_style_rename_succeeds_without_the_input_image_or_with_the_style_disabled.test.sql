begin;
select plan(6);

-- A style rename cascades into existing jobs. The insert-time checks (the init image exists, the style is enabled)
-- are not run again on them, so neither a user deleting their own input image (the storage policies allow it)
-- nor a disabled style can make the admin's rename fail (generation_jobs_prepare_request in
-- supabase/migrations/*_generation_jobs.sql).
select tests.create_supabase_user('alice');
update queue.quota_limits set max_active_jobs = 10 where user_id is null;

select tests.authenticate_as('alice');
insert into storage.objects (bucket_id, name, owner_id)
values ('generation-inputs', tests.get_supabase_uid('alice') || '/in.png', tests.get_supabase_uid('alice')::text);
insert into public.generation_jobs (prompt, style, init_image_path, client_request_id)
values ('x', 'realistic', tests.get_supabase_uid('alice') || '/in.png', 'with-image');
insert into public.generation_jobs (prompt, style, client_request_id) values ('y', 'watercolor', 'on-watercolor');

-- TEST: the user deletes their input image after the insert, as the storage policies allow
delete from storage.objects where bucket_id = 'generation-inputs';
reset role;
select is((select count(*)::integer from storage.objects where bucket_id = 'generation-inputs'), 0,
          'alice deleted her own input image');

reset role;
-- TEST: the rename of the style of a job whose input image is gone succeeds
select lives_ok($$update public.generation_styles set id = 'realistic-v2' where id = 'realistic'$$,
                'renaming a style whose job lost its input image succeeds');
select results_eq($$select style, variant, init_image_path from public.generation_jobs
                    where client_request_id = 'with-image'$$,
                  format($$values ('realistic-v2'::text, 'edit'::text, '%s/in.png'::text)$$,
                         tests.get_supabase_uid('alice')),
                  'the job follows the rename and keeps its variant and (now missing) init image path');

-- TEST: a disabled style can be renamed while jobs name it
update public.generation_styles set enabled = false where id = 'watercolor';
select lives_ok($$update public.generation_styles set id = 'watercolor-old' where id = 'watercolor'$$,
                'renaming a disabled style succeeds');
select is((select style from public.generation_jobs where client_request_id = 'on-watercolor'), 'watercolor-old',
          'its job follows the rename');

-- TEST: clients still cannot insert a job with the disabled style
select tests.authenticate_as('alice');
select throws_ok($$insert into public.generation_jobs (prompt, style) values ('z', 'watercolor-old')$$,
                 '22023', 'style: unknown style ''watercolor-old''', 'a disabled style is still refused at insert');

select * from finish();
rollback;
