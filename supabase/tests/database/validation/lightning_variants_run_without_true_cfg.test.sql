begin;
select plan(14);

-- Lightning variants (lightning-4, lightning-8, edit, bf16) are CFG-distilled and run without true CFG
-- (supabase/migrations/*_styles_and_variants.sql, *_generation_jobs.sql): a request above their max_true_cfg_scale is rejected naming true_cfg_scale, a style preset is
-- checked against its default variant and capped for other variants, a variant's maximum cannot drop below a style.

select tests.create_supabase_user('alice');
update queue.quota_limits set max_active_jobs = 50 where user_id is null;
insert into public.generation_styles (id, label, default_variant, true_cfg_scale)
values ('studio-cfg', 'Studio (true CFG)', 'base', 4.0);
insert into queue.franchise_loras (franchise, lora, scale) values ('sailor senshi', 'o/r/sailor.safetensors', 0.8);

-- TEST: each variant's maximum
select results_eq($$select id, max_true_cfg_scale from public.generation_variants order by id$$,
                  $$values ('base'::text, 20::real), ('bf16', 1), ('edit', 1), ('lightning-4', 1),
                           ('lightning-8', 1), ('tiny', 20)$$,
                  'Lightning variants accept at most 1; base and tiny up to 20');

select tests.authenticate_as('alice');

-- TEST: a request's own CFG above 1 on a Lightning variant is rejected, naming the field (SQLSTATE 22023)
select throws_ok($$insert into public.generation_jobs (prompt, variant, true_cfg_scale) values ('x', 'lightning-8', 1.5)$$,
                 '22023', 'true_cfg_scale: variant lightning-8 runs without true CFG and accepts at most 1 (got 1.5)',
                 'lightning-8 with CFG 1.5 is rejected');
select throws_ok($$insert into public.generation_jobs (prompt, variant, true_cfg_scale) values ('x', 'lightning-4', 4)$$,
                 '22023', 'true_cfg_scale: variant lightning-4 runs without true CFG and accepts at most 1 (got 4)',
                 'lightning-4 with CFG 4 is rejected');
select throws_ok($$insert into public.generation_jobs (prompt, style, true_cfg_scale) values ('x', 'anime', 3)$$,
                 '22023', 'true_cfg_scale: variant lightning-8 runs without true CFG and accepts at most 1 (got 3)',
                 'the style''s default variant (lightning-8) is checked too');
select throws_ok($$insert into public.generation_jobs (prompt, variant, franchise, true_cfg_scale)
                   values ('x', 'base', 'Sailor Senshi', 3)$$,
                 '22023', 'true_cfg_scale: variant bf16 runs without true CFG and accepts at most 1 (got 3)',
                 'a franchise routed to bf16 cannot keep a CFG above 1');

-- TEST: what stays allowed
insert into public.generation_jobs (prompt, variant, true_cfg_scale, client_request_id)
values ('x', 'lightning-8', 1, 'l8-cfg-1'), ('x', 'base', 7.5, 'base-cfg');
insert into public.generation_jobs (prompt, style, client_request_id) values ('x', 'studio-cfg', 'studio-default');
insert into public.generation_jobs (prompt, style, variant, client_request_id)
values ('x', 'studio-cfg', 'lightning-4', 'studio-on-lightning');
select results_eq($$select client_request_id, variant, true_cfg_scale from public.generation_jobs
                    where client_request_id is not null order by 1$$,
                  $$values ('base-cfg'::text, 'base'::text, 7.5::real), ('l8-cfg-1', 'lightning-8', 1),
                           ('studio-default', 'base', 4), ('studio-on-lightning', 'lightning-4', 1)$$,
                  'CFG 1 on Lightning and any CFG on base are kept; a style''s preset is capped on a Lightning variant');
select is((select count(*)::integer from public.generation_jobs), 4, 'the rejected inserts created no job');

reset role;

-- TEST: an admin edit that moves a job with true CFG to a Lightning variant is rejected
select throws_ok($$update public.generation_jobs set variant = 'lightning-8' where client_request_id = 'base-cfg'$$,
                 '22023', 'true_cfg_scale: variant lightning-8 runs without true CFG and accepts at most 1 (got 7.5)',
                 'moving a CFG 7.5 job to lightning-8 is rejected');
select throws_ok($$update public.generation_jobs set true_cfg_scale = 2 where client_request_id = 'l8-cfg-1'$$,
                 '22023', 'true_cfg_scale: variant lightning-8 runs without true CFG and accepts at most 1 (got 2)',
                 'raising the CFG of a lightning-8 job is rejected');
select lives_ok($$update public.generation_jobs set true_cfg_scale = 5 where client_request_id = 'base-cfg'$$,
                'a base job''s CFG may change');

-- TEST: style presets are checked against their default variant
select throws_ok($$insert into public.generation_styles (id, label, true_cfg_scale) values ('loud', 'Loud', 4)$$,
                 '22023', 'true_cfg_scale: variant lightning-8 runs without true CFG and accepts at most 1 (got 4)',
                 'a style with CFG 4 on the default lightning-8 is rejected');
select throws_ok($$update public.generation_styles set default_variant = 'lightning-8' where id = 'studio-cfg'$$,
                 '22023', 'true_cfg_scale: variant lightning-8 runs without true CFG and accepts at most 1 (got 4)',
                 'moving a CFG 4 style to lightning-8 is rejected');

-- TEST: a variant's maximum stays above the styles that default to it, and above its own default
select throws_ok($$update public.generation_variants set max_true_cfg_scale = 2 where id = 'base'$$,
                 '22023', 'max_true_cfg_scale: style studio-cfg defaults to variant base with true_cfg_scale 4, above 2',
                 'lowering base''s maximum below a style is rejected');
select throws_ok($$update public.generation_variants set default_true_cfg_scale = 2 where id = 'lightning-8'$$,
                 '23514', null, 'a variant''s default CFG cannot exceed its maximum');

select * from finish();
rollback;
